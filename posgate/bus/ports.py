"""The bus's ports: what producers hand to a sink, what consumers and listeners receive, their types.

The bus treats every body as opaque bytes (the protobuf event envelope); the event id travels
as the AMQP `message_id` and the event type as the AMQP `type`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

# The longest values the outbox/inbox columns hold (posgate/db/tables.py).
MAX_EVENT_ID = 64
MAX_EVENT_TYPE = 128
MAX_ROUTING_KEY = 255


@dataclass(frozen=True)
class OutgoingEvent:
    """One event a producer writes to the outbox and a sink later publishes.

    Attributes:
        event_id: Globally unique id (becomes the AMQP message_id; consumers de-duplicate on it).
        event_type: Fully qualified envelope type (becomes the AMQP `type`).
        routing_key: `<domain>.<event>`, e.g. `inventory.stock_changed`.
        body: The serialized envelope; the bus never looks inside.
        partition_key: Ordering key (the store id for stock events), carried as a header.
        headers: Extra string headers (correlation id and the like).
        created_at: When the event was written; set by the outbox when read back.

    """

    event_id: str
    event_type: str
    routing_key: str
    body: bytes
    partition_key: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    created_at: datetime | None = None

    def __post_init__(self) -> None:
        """Reject events the outbox columns or an AMQP routing key could not carry."""
        if not 0 < len(self.event_id) <= MAX_EVENT_ID:
            raise ValueError(f"event_id must be 1..{MAX_EVENT_ID} characters")
        if not 0 < len(self.event_type) <= MAX_EVENT_TYPE:
            raise ValueError(f"event_type must be 1..{MAX_EVENT_TYPE} characters")
        if not 0 < len(self.routing_key) <= MAX_ROUTING_KEY or any(c in self.routing_key for c in "*#"):
            raise ValueError("routing_key must be a concrete `<domain>.<event>` key without wildcards")


@dataclass(frozen=True)
class IncomingEvent:
    """One delivery of an event to a consumer's handler.

    Attributes:
        event_id: The producer's event id (the inbox de-duplicates on it).
        event_type: The envelope type.
        routing_key: The key the event was published with.
        body: The serialized envelope.
        partition_key: The ordering key, when the producer gave one.
        headers: The producer's extra headers.
        attempt: 1 on the first try; counts crashed deliveries and failed handler runs.

    """

    event_id: str
    event_type: str
    routing_key: str
    body: bytes
    partition_key: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    attempt: int = 1


Handler = Callable[[IncomingEvent, AsyncSession], Awaitable[None]]
"""Applies one event inside the consumer's transaction (the same one that records it in the inbox).

The handler must not commit or roll back: the consumer commits after it returns, then acks.
"""


Listener = Callable[[IncomingEvent], Awaitable[None]]
"""Takes one broadcast notification; no transaction, no inbox, no retry (see `Listeners`)."""

Reconnected = Callable[[], Awaitable[None]]
"""Awaited after a listener's queue is bound again following a reconnect: re-read state now."""


class PoisonMessage(Exception):
    """Raised by a handler when retrying can never help (undecodable body, unknown schema)."""


class EventSink(ABC):
    """Where the outbox relay sends events."""

    @abstractmethod
    async def publish(self, events: Sequence[OutgoingEvent]) -> None:
        """Publish the batch in order; return only once every event is durably accepted.

        Raises:
            Exception: Any failure; the relay then publishes the whole batch again later.

        """


class Subscriptions(ABC):
    """The consumers a process runs."""

    @abstractmethod
    def subscribe(self, name: str, binding_keys: Sequence[str], handler: Handler) -> None:
        """Register `handler` as consumer `name` for events whose routing key matches a binding key."""

    @abstractmethod
    async def start(self) -> None:
        """Start consuming (declares broker topology where there is a broker)."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop consuming after in-flight events are finished."""

    @abstractmethod
    async def healthy(self) -> bool:
        """Whether the transport can currently deliver events."""


class Listeners(ABC):
    """Broadcast listeners: every process gets its own copy of each matching event.

    Unlike a named consumer there is no inbox, no retry and no dead letter: a listener is told
    that something changed and re-reads the state itself. Events may be missed while the
    transport reconnects, which is why the listener is told when it has reconnected.
    """

    @abstractmethod
    def listen(
        self, binding_keys: Sequence[str], callback: Listener, *, on_reconnect: Reconnected | None = None
    ) -> None:
        """Register `callback` for events whose routing key matches a binding key."""

    @abstractmethod
    async def start(self) -> None:
        """Start listening (declares broker topology where there is a broker)."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop listening after the callbacks in progress return."""
