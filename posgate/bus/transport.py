"""Builds the process's event bus from `Settings`: the outbox relay plus in-process or RabbitMQ consumers."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from posgate.bus.consumer import RabbitSubscriptions
from posgate.bus.inprocess import InProcessBus
from posgate.bus.ports import EventSink, Handler, Subscriptions
from posgate.bus.rabbit import Broker, RabbitSink
from posgate.bus.relay import OutboxRelay
from posgate.settings import EventTransport, Settings


class EventBus:
    """The relay that empties this process's outbox and the consumers this process runs."""

    def __init__(
        self, relay: OutboxRelay, subscriptions: Subscriptions, broker: Broker | None = None
    ) -> None:
        """Assemble a bus; prefer `build_event_bus`."""
        self.relay = relay
        self._subscriptions = subscriptions
        self._broker = broker
        self._relay_task: asyncio.Task[None] | None = None

    def subscribe(self, name: str, binding_keys: Sequence[str], handler: Handler) -> None:
        """Register consumer `name` before `start()` (stable and unique: it names the queue and inbox rows).

        Args:
            name: Consumer name, e.g. `routing.stock_listener`.
            binding_keys: Topic patterns such as `inventory.*` or `orders.#`.
            handler: Applies one event inside the consumer's transaction.

        Raises:
            RuntimeError: With RabbitMQ, when the bus is already started.

        """
        self._subscriptions.subscribe(name, binding_keys, handler)

    async def start(self, *, run_relay: bool = True) -> None:
        """Connect to the broker (if any), start the consumers, then the relay in a background task.

        Raises:
            Exception: The broker cannot be reached at start-up (afterwards the robust
                connection reconnects by itself).

        """
        if self._broker is not None:
            await self._broker.connect()
        await self._subscriptions.start()
        if run_relay:
            self._relay_task = asyncio.create_task(self.relay.run(), name="posgate-outbox-relay")

    async def stop(self) -> None:
        """Stop the relay after its current round, then the consumers, then close the connection."""
        self.relay.stop()
        if self._relay_task is not None:
            await self._relay_task
            self._relay_task = None
        await self._subscriptions.stop()
        if self._broker is not None:
            await self._broker.close()

    async def healthy(self) -> bool:
        """Whether events can currently be delivered (the broker connection is up, when there is one)."""
        return await self._subscriptions.healthy()


def build_event_bus(settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> EventBus:
    """Build the bus `settings.event_transport` asks for, with one broker connection per process."""
    sink: EventSink
    subscriptions: Subscriptions
    broker: Broker | None = None
    if settings.event_transport is EventTransport.INPROCESS:
        inprocess = InProcessBus(sessions, max_attempts=settings.consumer_max_attempts)
        sink, subscriptions = inprocess, inprocess
    else:
        broker = Broker(settings.amqp_url)
        sink = RabbitSink(broker, settings)
        subscriptions = RabbitSubscriptions(broker, sessions, settings)
    relay = OutboxRelay(
        sessions, sink, batch_size=settings.relay_batch_size, poll_interval=settings.relay_poll_interval_s
    )
    return EventBus(relay, subscriptions, broker)
