"""The in-process transport for `posgate dev`: the outbox relay hands batches straight to handlers.

Same outbox, same relay, same handler signature and inbox de-duplication as with RabbitMQ; only
the broker is missing. Handlers that keep failing land in the `event_dead_letters` table.
Broadcast listeners get each relayed event once (this process is the only "replica").
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from posgate.bus.delivery import Rejected, deliver
from posgate.bus.ports import (
    EventSink,
    Handler,
    IncomingEvent,
    Listener,
    Listeners,
    OutgoingEvent,
    Reconnected,
    Subscriptions,
)
from posgate.bus.retry import Backoff
from posgate.db.tables import dead_letters

log = logging.getLogger(__name__)


def topic_matches(binding_key: str, routing_key: str) -> bool:
    """AMQP topic matching: `*` is exactly one word, `#` zero or more words."""
    return _words_match(binding_key.split("."), routing_key.split("."))


def _words_match(pattern: Sequence[str], words: Sequence[str]) -> bool:
    if not pattern:
        return not words
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return any(_words_match(rest, words[skip:]) for skip in range(len(words) + 1))
    return bool(words) and head in ("*", words[0]) and _words_match(rest, words[1:])


@dataclass(frozen=True)
class _Subscriber:
    name: str
    binding_keys: tuple[str, ...]
    handler: Handler

    def wants(self, routing_key: str) -> bool:
        return any(topic_matches(key, routing_key) for key in self.binding_keys)


@dataclass(frozen=True)
class _Listener:
    binding_keys: tuple[str, ...]
    callback: Listener

    def wants(self, routing_key: str) -> bool:
        return any(topic_matches(key, routing_key) for key in self.binding_keys)


class InProcessBus(EventSink, Subscriptions, Listeners):
    """An `EventSink` that delivers each relayed batch to the subscribers and listeners in this process."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], *, max_attempts: int, backoff: Backoff | None = None
    ) -> None:
        """Deliver through `sessions`, running a failing handler at most `max_attempts` times."""
        self._sessions = sessions
        self._max_attempts = max_attempts
        self._backoff = backoff or Backoff(base_s=0.05, cap_s=2.0)
        self._subscribers: list[_Subscriber] = []
        self._listeners: list[_Listener] = []

    def subscribe(self, name: str, binding_keys: Sequence[str], handler: Handler) -> None:
        """Register consumer `name` for routing keys matching any of `binding_keys`."""
        self._subscribers.append(_Subscriber(name, tuple(binding_keys), handler))

    def listen(
        self, binding_keys: Sequence[str], callback: Listener, *, on_reconnect: Reconnected | None = None
    ) -> None:
        """Register a broadcast listener (also after `start()`); `on_reconnect` is never called here."""
        self._listeners.append(_Listener(tuple(binding_keys), callback))

    async def publish(self, events: Sequence[OutgoingEvent]) -> None:
        """Apply each event, in order, for every matching subscriber, then tell the matching listeners.

        Raises:
            Exception: A database failure; the relay then offers the batch again and the inbox
                skips what was already applied.

        """
        for event in events:
            incoming = IncomingEvent(
                event_id=event.event_id,
                event_type=event.event_type,
                routing_key=event.routing_key,
                body=event.body,
                partition_key=event.partition_key,
                headers=dict(event.headers),
            )
            for subscriber in self._subscribers:
                if subscriber.wants(event.routing_key):
                    await self._deliver(subscriber, incoming)
            for listener in self._listeners:
                if listener.wants(event.routing_key):
                    await _notify(listener, incoming)

    async def _deliver(self, subscriber: _Subscriber, event: IncomingEvent) -> None:
        outcome = await deliver(
            self._sessions,
            subscriber.name,
            event,
            subscriber.handler,
            max_attempts=self._max_attempts,
            backoff=self._backoff,
        )
        if isinstance(outcome, Rejected):
            log.error(
                "consumer %s: dead-lettering event %s: %s", subscriber.name, event.event_id, outcome.reason
            )
            async with self._sessions() as session, session.begin():
                await session.execute(
                    insert(dead_letters).values(
                        consumer=subscriber.name,
                        message_id=event.event_id,
                        routing_key=event.routing_key,
                        reason=outcome.reason,
                        body=event.body,
                        failed_at=datetime.now(UTC),
                    )
                )

    async def start(self) -> None:
        """Nothing to connect to."""

    async def stop(self) -> None:
        """Nothing to disconnect from."""

    async def healthy(self) -> bool:
        """Return True: the transport is this process, so it is up whenever we are."""
        return True


async def _notify(listener: _Listener, event: IncomingEvent) -> None:
    try:
        await listener.callback(event)
    except Exception:
        # As with RabbitMQ: a notification is not retried, and it must not fail the relay's batch.
        log.exception("listener: callback failed on event %s; dropped", event.event_id)
