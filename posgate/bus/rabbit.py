"""RabbitMQ: one robust connection per process, the publisher-confirm `EventSink`, message mapping."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any, cast

import aio_pika
import aiormq
from aio_pika.abc import (
    AbstractIncomingMessage,
    AbstractRobustChannel,
    AbstractRobustConnection,
    HeadersType,
)
from aiormq import spec
from aiormq.abc import DeliveredMessage
from pydantic import SecretStr

from posgate.bus.ports import EventSink, IncomingEvent, OutgoingEvent
from posgate.bus.retry import describe_error
from posgate.bus.topology import (
    CONTENT_TYPE,
    DELIVERY_COUNT_HEADER,
    PARTITION_KEY_HEADER,
    declare_events_exchange,
)
from posgate.settings import Settings

log = logging.getLogger(__name__)

APP_ID = "posgate"


class Broker:
    """The process's robust (self-reconnecting) connection, opened on first use."""

    def __init__(
        self, url: SecretStr, *, reconnect_interval: float = 1.0, connect_timeout: float = 5.0
    ) -> None:
        """Keep the URL secret; aio-pika masks the password in its own log lines."""
        self._url = url
        self._reconnect_interval = reconnect_interval
        self._connect_timeout = connect_timeout
        self._connection: AbstractRobustConnection | None = None
        self._lock = asyncio.Lock()

    async def channel(self, *, prefetch: int | None = None) -> AbstractRobustChannel:
        """Open a robust channel with publisher confirms (and a bounded prefetch when given).

        Raises:
            Exception: The broker is unreachable (the first connect is not retried here).

        """
        connection = await self._connect()
        channel = await connection.channel(publisher_confirms=True)
        if prefetch is not None:
            await channel.set_qos(prefetch_count=prefetch)
        return channel

    async def connect(self) -> None:
        """Open the robust connection now, so health reflects the broker from the start.

        Raises:
            Exception: The broker is unreachable (the first connect is not retried here).

        """
        await self._connect()

    def connected(self) -> bool:
        """Whether the connection is currently up (False before first use and while reconnecting)."""
        connection = self._connection
        return connection is not None and not connection.is_closed and connection.connected.is_set()

    async def close(self) -> None:
        """Close the connection and every channel on it."""
        async with self._lock:
            if self._connection is not None:
                await self._connection.close()
                self._connection = None

    async def _connect(self) -> AbstractRobustConnection:
        async with self._lock:
            if self._connection is None:
                self._connection = await aio_pika.connect_robust(
                    self._url.get_secret_value(),
                    reconnect_interval=self._reconnect_interval,
                    timeout=self._connect_timeout,
                    client_properties={"connection_name": APP_ID},
                )
            return self._connection


class RabbitSink(EventSink):
    """Publishes outbox batches to the events exchange and waits for every publisher confirm."""

    def __init__(self, broker: Broker, settings: Settings, *, publish_timeout: float = 10.0) -> None:
        """Publish through `broker` to `settings.events_exchange`."""
        self._broker = broker
        self._settings = settings
        self._publish_timeout = publish_timeout
        self._channel: AbstractRobustChannel | None = None
        self._unroutable: set[str] = set()

    async def publish(self, events: Sequence[OutgoingEvent]) -> None:
        """Publish `events` in order (one channel, pipelined) and return once all are confirmed.

        Raises:
            Exception: A nack, a timeout or a lost connection; the relay republishes the batch.

        """
        channel = await self._events_channel()
        # Straight to aiormq's channel, as aio-pika's `Exchange.publish` ends up, without an
        # aio-pika `Message` per event and without waiting for each frame's socket write before
        # the next (`wait=False`): 60 against 90 µs of CPU per event in a batch of 16. Each
        # publish takes the channel's write lock in task-creation order, so the frames go out in
        # outbox order while the confirms are awaited together; aiormq does not bound the wait
        # for a confirm, hence the timeout around all of them.
        async with asyncio.timeout(self._publish_timeout):
            # aio-pika's channels sit on aiormq's `Channel`, whose abstract base lacks `wait`.
            underlay = cast("aiormq.Channel", await channel.get_underlay_channel())
            results = await asyncio.gather(
                *(
                    underlay.basic_publish(
                        event.body,
                        exchange=self._settings.events_exchange,
                        routing_key=event.routing_key,
                        properties=_properties(event),
                        mandatory=True,
                        wait=False,
                    )
                    for event in events
                ),
                return_exceptions=True,
            )
        for event, result in zip(events, results, strict=True):
            if isinstance(result, BaseException):
                raise result
            if isinstance(result, DeliveredMessage):
                self._note_unroutable(event)

    async def _events_channel(self) -> AbstractRobustChannel:
        """The channel to publish on, the events exchange declared on it first."""
        if self._channel is None:
            channel = await self._broker.channel()
            await declare_events_exchange(channel, self._settings)
            self._channel = channel
        return self._channel

    def _note_unroutable(self, event: OutgoingEvent) -> None:
        # Confirmed but bound to no queue: normal for an event nobody subscribes to yet, so say
        # it once per routing key instead of failing the relay.
        if event.routing_key not in self._unroutable:
            self._unroutable.add(event.routing_key)
            log.warning("no queue is bound for routing key %s; such events are dropped", event.routing_key)


def _properties(event: OutgoingEvent) -> spec.Basic.Properties:
    headers: HeadersType = dict(event.headers)
    if event.partition_key is not None:
        headers[PARTITION_KEY_HEADER] = event.partition_key
    return spec.Basic.Properties(
        message_id=event.event_id,
        message_type=event.event_type,
        headers=headers,
        content_type=CONTENT_TYPE,
        delivery_mode=int(aio_pika.DeliveryMode.PERSISTENT),
        timestamp=event.created_at,
        app_id=APP_ID,
    )


def header_text(headers: Mapping[str, Any], name: str) -> str | None:
    """The header `name` as text, or None when the message does not carry it."""
    value = headers.get(name)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return None if value is None else str(value)


def incoming_event(message: AbstractIncomingMessage) -> IncomingEvent | str:
    """Return the event in `message`, or why it is malformed."""
    return _incoming(message.message_id, message.type, message.routing_key, message.body, message.headers)


def delivered_event(message: DeliveredMessage) -> IncomingEvent | str:
    """As `incoming_event`, for a delivery as aiormq hands it over (no aio-pika message around it)."""
    properties = message.header.properties
    return _incoming(
        properties.message_id,
        properties.message_type,
        message.routing_key,
        message.body,
        properties.headers or {},
    )


def _incoming(
    event_id: str | None,
    event_type: str | None,
    routing_key: str | None,
    body: bytes,
    headers: Mapping[str, Any],
) -> IncomingEvent | str:
    if not event_id:
        return "malformed message: no message_id (the event id)"
    if not event_type:
        return "malformed message: no type (the event type)"
    count = headers.get(DELIVERY_COUNT_HEADER)
    extra = {
        key: text
        for key in headers
        if key not in (DELIVERY_COUNT_HEADER, PARTITION_KEY_HEADER)
        and (text := header_text(headers, key)) is not None
    }
    return IncomingEvent(
        event_id=event_id,
        event_type=event_type,
        routing_key=routing_key or "",
        body=body,
        partition_key=header_text(headers, PARTITION_KEY_HEADER),
        headers=extra,
        attempt=(count if isinstance(count, int) else 0) + 1,
    )


async def broker_reachable(url: SecretStr, *, connect_timeout_s: float = 2.0) -> bool:
    """Open and close a plain connection: a health probe independent of the robust one."""
    try:
        connection = await aio_pika.connect(url.get_secret_value(), timeout=connect_timeout_s)
    except Exception as error:
        log.debug("broker unreachable: %s", describe_error(error))
        return False
    await connection.close()
    return True
