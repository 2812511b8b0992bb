"""RabbitMQ broadcast listeners: every process gets each matching event, re-bound after reconnects.

A listener is a notification channel, not a consumer: no inbox, no retry, no dead letter. Its
queue lives only as long as the process's connection, so events published while the broker
or the connection is down are lost for it; after the queue is declared and bound again, the
listener's `on_reconnect` is awaited so it can re-read what it may have missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from aio_pika.abc import AbstractQueue, AbstractRobustChannel
from aiormq.abc import AbstractChannel, DeliveredMessage

from posgate.bus.ports import Listener, Listeners, Reconnected
from posgate.bus.rabbit import Broker, delivered_event
from posgate.bus.retry import Backoff, describe_error
from posgate.bus.topology import declare_listener_queue
from posgate.settings import Settings

log = logging.getLogger(__name__)


class RabbitListener:
    """One broadcast listener: a private queue in this process, declared again after each reconnect.

    Callbacks of one listener run one at a time, in delivery order; keep them quick (hand the
    event to in-memory queues) since at most the prefetch count waits behind a slow one.
    """

    def __init__(
        self,
        binding_keys: Sequence[str],
        callback: Listener,
        on_reconnect: Reconnected | None,
        *,
        broker: Broker,
        settings: Settings,
        backoff: Backoff | None = None,
    ) -> None:
        """Create the listener; `start()` declares its queue and begins consuming."""
        self._binding_keys = tuple(binding_keys)
        self._callback = callback
        self._on_reconnect = on_reconnect
        self._broker = broker
        self._settings = settings
        self._backoff = backoff or Backoff(base_s=0.1, cap_s=5.0)
        self._channel: AbstractRobustChannel | None = None
        self._queue: AbstractQueue | None = None
        # The aiormq channel under `_channel` that the consumer was registered on.
        self._consuming_on: AbstractChannel | None = None
        self._consumer_tag: str | None = None
        self._rebinding: asyncio.Task[None] | None = None
        self._serial = asyncio.Lock()
        self._stopping = False
        # Deliveries handed to `_on_message` and not finished; processed ones not yet acked.
        self._arrived = 0
        self._unacked = 0

    @property
    def queue_name(self) -> str | None:
        """The name of the current queue (a new one after every reconnect), None before `start()`."""
        return None if self._queue is None else self._queue.name

    async def start(self) -> None:
        """Declare and bind the queue, start consuming, and watch for the channel being reopened."""
        self._channel = await self._broker.channel(prefetch=self._settings.consumer_prefetch)
        await self._bind(self._channel)
        # Added after the first bind: aio-pika calls it only when the robust channel is reopened
        # (after a connection loss or a channel error), which is exactly when to re-bind.
        self._channel.reopen_callbacks.add(self._on_reopen)

    async def stop(self) -> None:
        """Stop consuming, let the callback in progress return, close the channel."""
        self._stopping = True
        if self._rebinding is not None:
            self._rebinding.cancel()
            await asyncio.gather(self._rebinding, return_exceptions=True)
        channel = self._channel
        if channel is None:
            return
        channel.reopen_callbacks.discard(self._on_reopen)
        # Cancelling waits for the connection; while the broker is down there is nothing to cancel.
        consuming_on, tag = self._consuming_on, self._consumer_tag
        if consuming_on is not None and tag is not None and self._broker.connected():
            with contextlib.suppress(Exception):
                await consuming_on.basic_cancel(tag)
        async with self._serial:
            pass
        with contextlib.suppress(Exception):
            await channel.close()

    async def _bind(self, channel: AbstractRobustChannel) -> None:
        self._unacked = 0  # delivery tags start again on a new channel
        queue = await declare_listener_queue(channel, self._settings, self._binding_keys)
        # Manual acks, so the prefetch bounds what waits in this process (the broker ignores
        # prefetch for auto-ack consumers and would push a slow listener's whole backlog).
        # Consumed on aiormq's channel itself: aio-pika would wrap every delivery in a message
        # object and run the callback in a second task, about a third of a delivery's cost
        # here. Nothing is lost by it: this class, not aio-pika's restore, re-declares the queue
        # and consumes again after a reconnect.
        consuming_on = await channel.get_underlay_channel()
        consumed = await consuming_on.basic_consume(queue.name, self._on_message, no_ack=False)
        self._consuming_on, self._consumer_tag = consuming_on, consumed.consumer_tag
        self._queue = queue

    def _on_reopen(self, sender: AbstractRobustChannel | None, /) -> None:
        # aio-pika awaits this inside the connection's restore, where an exception would tear the
        # new connection down again; re-bind in a task instead. A newer reopen supersedes it.
        channel = sender or self._channel
        if self._stopping or channel is None:
            return
        if self._rebinding is not None:
            self._rebinding.cancel()
        self._rebinding = asyncio.create_task(self._rebind(channel), name="posgate-listener-rebind")

    async def _rebind(self, channel: AbstractRobustChannel) -> None:
        failures = 0
        while True:
            try:
                await self._bind(channel)
                break
            except Exception as error:
                failures += 1
                delay = self._backoff.delay(failures)
                log.warning(
                    "listener %s: cannot re-bind after a reconnect (attempt %d), retrying in %.2fs: %s",
                    ",".join(self._binding_keys),
                    failures,
                    delay,
                    describe_error(error),
                )
                await asyncio.sleep(delay)
        log.info(
            "listener %s: re-bound as %s after a reconnect", ",".join(self._binding_keys), self.queue_name
        )
        if self._on_reconnect is not None:
            try:
                await self._on_reconnect()
            except Exception:
                log.exception("listener %s: on_reconnect failed", ",".join(self._binding_keys))

    async def _on_message(self, message: DeliveredMessage) -> None:
        # aiormq runs every delivery in its own task; the lock keeps them in delivery order.
        self._arrived += 1
        try:
            async with self._serial:
                message_id = message.header.properties.message_id
                try:
                    event = delivered_event(message)
                    if isinstance(event, str):
                        log.warning("listener: dropping message %s: %s", message_id, event)
                    else:
                        await self._callback(event)
                except Exception:
                    # A notification is not retried: the listener re-reads state on the next one.
                    log.exception("listener: callback failed on message %s; dropped", message_id)
                await self._ack(message)
        finally:
            self._arrived -= 1

    async def _ack(self, message: DeliveredMessage) -> None:
        """Ack this delivery and every earlier one, once no later delivery is waiting.

        One ack frame (and socket write) per burst instead of per message; acking before half
        the prefetch is unacked keeps the broker sending.
        """
        self._unacked += 1
        limit = max(1, self._settings.consumer_prefetch // 2)
        if self._arrived > 1 and self._unacked < limit:
            return
        self._unacked = 0
        tag = message.delivery_tag
        if tag is not None:
            with contextlib.suppress(Exception):
                await message.channel.basic_ack(tag, multiple=True)


class RabbitListeners(Listeners):
    """The broadcast listeners one process runs against RabbitMQ."""

    def __init__(self, broker: Broker, settings: Settings) -> None:
        """Listeners share the process's broker connection, one channel each."""
        self._broker = broker
        self._settings = settings
        self.listeners: list[RabbitListener] = []
        self._started = False

    def listen(
        self, binding_keys: Sequence[str], callback: Listener, *, on_reconnect: Reconnected | None = None
    ) -> None:
        """Add a listener.

        Raises:
            RuntimeError: Called after `start()`: the listener would silently never run.

        """
        if self._started:
            raise RuntimeError("listen before the event bus is started")
        self.listeners.append(
            RabbitListener(binding_keys, callback, on_reconnect, broker=self._broker, settings=self._settings)
        )

    async def start(self) -> None:
        """Declare every listener's queue and start consuming."""
        self._started = True
        for listener in self.listeners:
            await listener.start()

    async def stop(self) -> None:
        """Stop every listener."""
        for listener in self.listeners:
            await listener.stop()
