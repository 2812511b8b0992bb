"""The one place that declares RabbitMQ topology and names the headers the bus puts on messages.

```
producers ─► <events_exchange> (topic, durable) ─┬─► <events_exchange>.<consumer> (quorum) ─► consumer
                                                 └─► ...one queue per consumer, bound by routing keys
                                                 └─► <events_exchange>.listener.<uuid> (classic, exclusive,
                                                     auto-delete) ─► one broadcast listener in one process
consumer queues ─x-dead-letter-exchange─┐
consumers (with the reason header) ─────┴─► <dead_letter_exchange> (topic) ─► <dlx>.queue (quorum)
```
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from aio_pika import ExchangeType
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue, AbstractRobustChannel
from pamqp.common import FieldTable

from posgate.settings import Settings

PARTITION_KEY_HEADER = "x-posgate-partition-key"
"""The ordering key (store id for stock events), so consumers can later partition on it."""
REASON_HEADER = "x-posgate-reason"
"""On dead letters: why the consumer gave up (`ExceptionType: message`)."""
CONSUMER_HEADER = "x-posgate-consumer"
"""On dead letters: the consumer that gave up."""
ATTEMPTS_HEADER = "x-posgate-attempts"
"""On dead letters: how many times the handler ran or the message was delivered."""
DELIVERY_COUNT_HEADER = "x-delivery-count"
"""Set by quorum queues on redelivery: earlier deliveries that were not acknowledged."""
CONTENT_TYPE = "application/x-protobuf"
QUORUM: FieldTable = {"x-queue-type": "quorum"}
LISTENER_QUEUE_EXPIRES_MS = 60_000
"""A listener queue nobody consumes from (orphaned by a failed re-bind) is deleted after this."""


def consumer_queue_name(settings: Settings, consumer: str) -> str:
    """Name the durable queue of one consumer, e.g. `posgate.events.routing.stock_listener`."""
    return f"{settings.events_exchange}.{consumer}"


def listener_queue_name(settings: Settings) -> str:
    """Name a new broadcast listener queue, e.g. `posgate.events.listener.3f2a...`: unique per declaration."""
    return f"{settings.events_exchange}.listener.{uuid.uuid4().hex}"


def dead_letter_queue_name(settings: Settings) -> str:
    """Name the queue that keeps every dead letter until an operator looks at it."""
    return f"{settings.dead_letter_exchange}.queue"


async def declare_events_exchange(channel: AbstractChannel, settings: Settings) -> AbstractExchange:
    """Declare the durable topic exchange events are published to."""
    return await channel.declare_exchange(settings.events_exchange, ExchangeType.TOPIC, durable=True)


async def declare_dead_letters(channel: AbstractChannel, settings: Settings) -> AbstractExchange:
    """Declare the dead-letter exchange and the quorum queue that catches everything sent to it."""
    exchange = await channel.declare_exchange(settings.dead_letter_exchange, ExchangeType.TOPIC, durable=True)
    queue = await channel.declare_queue(dead_letter_queue_name(settings), durable=True, arguments=QUORUM)
    await queue.bind(exchange, routing_key="#")
    return exchange


async def declare_consumer_queue(
    channel: AbstractChannel, settings: Settings, consumer: str, binding_keys: Sequence[str]
) -> AbstractQueue:
    """Declare a consumer's durable quorum queue, dead-lettering to the DLX, bound to `binding_keys`.

    Queue arguments can not change once the queue exists (RabbitMQ answers PRECONDITION_FAILED),
    which is why the delivery limit is enforced by the consumer rather than `x-delivery-limit`.
    """
    events = await declare_events_exchange(channel, settings)
    await declare_dead_letters(channel, settings)
    queue = await channel.declare_queue(
        consumer_queue_name(settings, consumer),
        durable=True,
        arguments={**QUORUM, "x-dead-letter-exchange": settings.dead_letter_exchange},
    )
    for key in binding_keys:
        await queue.bind(events, routing_key=key)
    return queue


async def declare_listener_queue(
    channel: AbstractRobustChannel, settings: Settings, binding_keys: Sequence[str]
) -> AbstractQueue:
    """Declare a new private queue for one broadcast listener, bound to `binding_keys`.

    Exclusive, auto-delete, non-durable, classic: it lives and dies with this process's
    connection. It gets a fresh name on every declaration, and the caller (not aio-pika's
    robust restore) re-declares it after a reconnect: re-using a name could collide with the
    old connection's queue while the broker has not yet noticed that connection is dead
    (RESOURCE_LOCKED), and an explicit re-declaration is what tells the listener to re-sync.
    """
    events = await declare_events_exchange(channel, settings)
    queue = await channel.declare_queue(
        listener_queue_name(settings),
        durable=False,
        exclusive=True,
        auto_delete=True,
        arguments={"x-queue-type": "classic", "x-expires": LISTENER_QUEUE_EXPIRES_MS},
        robust=False,
    )
    for key in binding_keys:
        await queue.bind(events, routing_key=key)
    return queue
