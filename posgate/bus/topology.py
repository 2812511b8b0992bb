"""The one place that declares RabbitMQ topology and names the headers the bus puts on messages.

```
producers ─► <events_exchange> (topic, durable) ─┬─► <events_exchange>.<consumer> (quorum) ─► consumer
                                                 └─► ...one queue per consumer, bound by routing keys
consumer queues ─x-dead-letter-exchange─┐
consumers (with the reason header) ─────┴─► <dead_letter_exchange> (topic) ─► <dlx>.queue (quorum)
```
"""

from __future__ import annotations

from collections.abc import Sequence

from aio_pika import ExchangeType
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue
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


def consumer_queue_name(settings: Settings, consumer: str) -> str:
    """Name the durable queue of one consumer, e.g. `posgate.events.routing.stock_listener`."""
    return f"{settings.events_exchange}.{consumer}"


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
