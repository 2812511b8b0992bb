"""RabbitMQ consumers: inbox de-duplication, ack after commit, dead letters that carry the reason."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import AsyncIterator, Sequence

import aio_pika
from aio_pika.abc import AbstractExchange, AbstractIncomingMessage, AbstractQueue, AbstractRobustChannel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from posgate.bus.delivery import Outcome, Rejected, deliver
from posgate.bus.ports import Handler, IncomingEvent, Subscriptions
from posgate.bus.rabbit import Broker, header_text, incoming_event
from posgate.bus.retry import Backoff, describe_error
from posgate.bus.topology import (
    ATTEMPTS_HEADER,
    CONSUMER_HEADER,
    DELIVERY_COUNT_HEADER,
    PARTITION_KEY_HEADER,
    REASON_HEADER,
    declare_consumer_queue,
    declare_dead_letters,
)
from posgate.settings import Settings

log = logging.getLogger(__name__)


class RabbitConsumer:
    """One named consumer: its own quorum queue, bounded prefetch, events applied once each.

    Events that share a partition key are applied one after another in queue order; events
    without one run concurrently, up to the prefetch.
    """

    def __init__(
        self,
        name: str,
        binding_keys: Sequence[str],
        handler: Handler,
        sessions: async_sessionmaker[AsyncSession],
        settings: Settings,
        *,
        broker: Broker,
        backoff: Backoff | None = None,
    ) -> None:
        """Create the consumer; `start()` declares its queue and begins consuming."""
        self.name = name
        self._binding_keys = tuple(binding_keys)
        self._handler = handler
        self._sessions = sessions
        self._settings = settings
        self._broker = broker
        self._backoff = backoff or Backoff(base_s=0.05, cap_s=5.0)
        self._channel: AbstractRobustChannel | None = None
        self._queue: AbstractQueue | None = None
        self._dead_letters: AbstractExchange | None = None
        self._consumer_tag: str | None = None
        self._stopping = False
        self._in_flight: set[asyncio.Task[object]] = set()
        self._partitions: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    async def start(self) -> None:
        """Declare the topology and start consuming; the robust channel re-consumes after reconnects."""
        self._channel = await self._broker.channel(prefetch=self._settings.consumer_prefetch)
        self._dead_letters = await declare_dead_letters(self._channel, self._settings)
        self._queue = await declare_consumer_queue(
            self._channel, self._settings, self.name, self._binding_keys
        )
        self._consumer_tag = await self._queue.consume(self._on_message)

    async def stop(self) -> None:
        """Stop taking messages, let in-flight ones finish, close the channel."""
        self._stopping = True
        if self._queue is not None and self._consumer_tag is not None:
            with contextlib.suppress(Exception):
                await self._queue.cancel(self._consumer_tag)
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)
        if self._channel is not None:
            with contextlib.suppress(Exception):
                await self._channel.close()

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
        try:
            async with self._partition(header_text(message.headers, PARTITION_KEY_HEADER)):
                await self._handle(message)
        except Exception as error:
            # Back to the queue (or, if the channel is gone, the broker returns it anyway); the
            # inbox drops it on redelivery if it was already applied.
            log.warning(
                "consumer %s: message %s returned for redelivery: %s",
                self.name,
                message.message_id,
                describe_error(error),
            )
            with contextlib.suppress(Exception):
                await message.nack(requeue=True)
        finally:
            if task is not None:
                self._in_flight.discard(task)

    @contextlib.asynccontextmanager
    async def _partition(self, key: str | None) -> AsyncIterator[None]:
        if key is None:
            yield
            return
        lock = self._partitions.get(key)
        if lock is None:
            lock = self._partitions[key] = asyncio.Lock()
        async with lock:
            yield

    async def _handle(self, message: AbstractIncomingMessage) -> None:
        # Explicit acks rather than `message.process()`: there are three endings (ack, dead-letter
        # then ack, requeue on shutdown), and the ack must follow the commit inside `deliver`.
        event = incoming_event(message)
        if isinstance(event, str):
            await self._dead_letter(message, Rejected(event, attempts=0))
            return
        outcome = await self._deliver(event)
        if outcome is None:
            await message.nack(requeue=True)
        elif isinstance(outcome, Rejected):
            await self._dead_letter(message, outcome)
        else:
            if outcome.duplicate:
                log.info(
                    "consumer %s: event %s (attempt %d) was already applied; acking the duplicate",
                    self.name,
                    event.event_id,
                    event.attempt,
                )
            await message.ack()

    async def _deliver(self, event: IncomingEvent) -> Outcome | None:
        """Deliver until applied or rejected; database outages are waited out (None on shutdown)."""
        failures = 0
        while not self._stopping:
            try:
                return await deliver(
                    self._sessions,
                    self.name,
                    event,
                    self._handler,
                    max_attempts=self._settings.consumer_max_attempts,
                    backoff=self._backoff,
                )
            except Exception as error:
                failures += 1
                log.warning(
                    "consumer %s: cannot record event %s, retrying: %s",
                    self.name,
                    event.event_id,
                    describe_error(error),
                )
                await asyncio.sleep(self._backoff.delay(failures))
        return None

    async def _dead_letter(self, message: AbstractIncomingMessage, rejected: Rejected) -> None:
        log.error(
            "consumer %s: dead-lettering message %s: %s", self.name, message.message_id, rejected.reason
        )
        if self._dead_letters is None:
            raise RuntimeError("consumer is not started")
        headers = dict(message.headers)
        headers.pop(DELIVERY_COUNT_HEADER, None)
        headers |= {
            REASON_HEADER: rejected.reason,
            CONSUMER_HEADER: self.name,
            ATTEMPTS_HEADER: rejected.attempts,
        }
        dead = aio_pika.Message(
            message.body,
            headers=headers,
            message_id=message.message_id,
            type=message.type,
            content_type=message.content_type,
            timestamp=message.timestamp,
            app_id=message.app_id,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        # The channel has publisher confirms: ack the original only once the broker holds the copy.
        await self._dead_letters.publish(dead, routing_key=message.routing_key or "", mandatory=False)
        await message.ack()


class RabbitSubscriptions(Subscriptions):
    """The consumers one process runs against RabbitMQ."""

    def __init__(
        self, broker: Broker, sessions: async_sessionmaker[AsyncSession], settings: Settings
    ) -> None:
        """Consumers share the process's broker connection, one channel each."""
        self._broker = broker
        self._sessions = sessions
        self._settings = settings
        self.consumers: list[RabbitConsumer] = []
        self._started = False

    def subscribe(self, name: str, binding_keys: Sequence[str], handler: Handler) -> None:
        """Add consumer `name`.

        Raises:
            RuntimeError: Called after `start()`: the consumer would silently never run.

        """
        if self._started:
            raise RuntimeError(f"subscribe {name!r} before the event bus is started")
        self.consumers.append(
            RabbitConsumer(name, binding_keys, handler, self._sessions, self._settings, broker=self._broker)
        )

    async def start(self) -> None:
        """Declare every consumer's queue and start consuming."""
        self._started = True
        for consumer in self.consumers:
            await consumer.start()

    async def stop(self) -> None:
        """Stop every consumer."""
        for consumer in self.consumers:
            await consumer.stop()

    async def healthy(self) -> bool:
        """Whether the broker connection is up."""
        return self._broker.connected()
