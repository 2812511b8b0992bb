"""The event bus: transactional outbox, relay, RabbitMQ or in-process transport, inbox consumers.

Producers call `add_events(session, [OutgoingEvent(...)])` inside the transaction that changes
state; each process builds one bus with `build_event_bus(settings, sessions)`, subscribes its
handlers, and starts it. See docs/events.md.
"""

from __future__ import annotations

from posgate.bus.outbox import add_events
from posgate.bus.ports import Handler, IncomingEvent, OutgoingEvent, PoisonMessage
from posgate.bus.rabbit import broker_reachable
from posgate.bus.transport import EventBus, build_event_bus

__all__ = [
    "EventBus",
    "Handler",
    "IncomingEvent",
    "OutgoingEvent",
    "PoisonMessage",
    "add_events",
    "broker_reachable",
    "build_event_bus",
]
