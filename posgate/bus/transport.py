"""Builds the process's event bus from `Settings`: the outbox relay, consumers and listeners."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from posgate.bus.consumer import RabbitSubscriptions
from posgate.bus.inprocess import InProcessBus
from posgate.bus.listener import RabbitListeners
from posgate.bus.ports import EventSink, Handler, Listener, Listeners, Reconnected, Subscriptions
from posgate.bus.pruning import BusPruner
from posgate.bus.rabbit import Broker, RabbitSink
from posgate.bus.relay import OutboxRelay
from posgate.settings import EventTransport, Settings


class EventBus:
    """The relay that empties this process's outbox and the consumers and listeners this process runs."""

    def __init__(
        self,
        relay: OutboxRelay,
        subscriptions: Subscriptions,
        listeners: Listeners,
        broker: Broker | None = None,
        pruner: BusPruner | None = None,
    ) -> None:
        """Assemble a bus; prefer `build_event_bus`. `pruner` runs beside the relay."""
        self.relay = relay
        self._subscriptions = subscriptions
        self._listeners = listeners
        self._broker = broker
        self._pruner = pruner
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

    def listen(
        self,
        binding_keys: Sequence[str],
        callback: Listener,
        *,
        on_reconnect: Reconnected | None = None,
    ) -> None:
        """Register a broadcast listener before `start()`: every process gets each matching event.

        For notifications (a `WatchStock` stream learning that stock changed), not for work:
        no inbox, no retry, no dead letter; a failing callback is logged and the event dropped.
        Events published while this process is disconnected from the broker are lost to it, so
        re-read state in `on_reconnect`, which is awaited once the listener is bound again.

        Args:
            binding_keys: Topic patterns such as `inventory.stock_changed` or `inventory.#`.
            callback: Takes one event; the callbacks of one listener run one at a time, in order.
            on_reconnect: Awaited after each reconnect (never with the in-process transport).

        Raises:
            RuntimeError: With RabbitMQ, when the bus is already started.

        """
        self._listeners.listen(binding_keys, callback, on_reconnect=on_reconnect)

    def notify_committed(self) -> None:
        """Tell the relay outbox rows were just committed, so they leave now, not at the next poll.

        Call it right after the commit (not inside the transaction: the relay would not see the
        rows yet). Cheap, synchronous, and calls coalesce; the poll remains the safety net.
        """
        self.relay.wake()

    async def start(self, *, run_relay: bool = True) -> None:
        """Connect to the broker (if any), start listeners and consumers, then the relay in a task.

        The relay's process also applies the outbox and inbox retentions (`posgate.bus.pruning`).

        Raises:
            Exception: The broker cannot be reached at start-up (afterwards the robust
                connection reconnects by itself).

        """
        if self._broker is not None:
            await self._broker.connect()
        await self._listeners.start()
        await self._subscriptions.start()
        if run_relay:
            self._relay_task = asyncio.create_task(self.relay.run(), name="posgate-outbox-relay")
            if self._pruner is not None:
                self._pruner.start()

    async def stop(self) -> None:
        """Stop the relay after its current round, then the consumers and listeners, then the connection."""
        if self._pruner is not None:
            await self._pruner.stop()
        self.relay.stop()
        if self._relay_task is not None:
            await self._relay_task
            self._relay_task = None
        await self._subscriptions.stop()
        await self._listeners.stop()
        if self._broker is not None:
            await self._broker.close()

    async def healthy(self) -> bool:
        """Whether events can currently be delivered (the broker connection is up, when there is one)."""
        return await self._subscriptions.healthy()


def build_event_bus(settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> EventBus:
    """Build the bus `settings.event_transport` asks for, with one broker connection per process."""
    sink: EventSink
    subscriptions: Subscriptions
    listeners: Listeners
    broker: Broker | None = None
    if settings.event_transport is EventTransport.INPROCESS:
        inprocess = InProcessBus(sessions, max_attempts=settings.consumer_max_attempts)
        sink, subscriptions, listeners = inprocess, inprocess, inprocess
    else:
        broker = Broker(settings.amqp_url)
        sink = RabbitSink(broker, settings)
        subscriptions = RabbitSubscriptions(broker, sessions, settings)
        listeners = RabbitListeners(broker, settings)
    relay = OutboxRelay(
        sessions, sink, batch_size=settings.relay_batch_size, poll_interval=settings.relay_poll_interval_s
    )
    pruner = BusPruner.from_seconds(
        sessions, settings.outbox_retention_s, settings.inbox_retention_s, settings.bus_prune_interval_s
    )
    return EventBus(relay, subscriptions, listeners, broker, pruner)
