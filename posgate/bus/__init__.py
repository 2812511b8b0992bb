"""The event bus: transactional outbox, relay, RabbitMQ or in-process transport, inbox consumers.

Producers call `add_events(session, [OutgoingEvent(...)])` inside the transaction that changes
state (then `bus.notify_committed()` so they leave at once); each process builds one bus with
`build_event_bus(settings, sessions)`, subscribes its handlers and broadcast listeners, and
starts it. See docs/events.md.
"""

from __future__ import annotations

from posgate.bus.outbox import add_events
from posgate.bus.ports import Handler, IncomingEvent, Listener, OutgoingEvent, PoisonMessage, Reconnected
from posgate.bus.rabbit import broker_reachable
from posgate.bus.transport import EventBus, build_event_bus

__all__ = [
    "EventBus",
    "Handler",
    "IncomingEvent",
    "Listener",
    "OutgoingEvent",
    "PoisonMessage",
    "Reconnected",
    "add_events",
    "broker_reachable",
    "build_event_bus",
]
