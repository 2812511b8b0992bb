"""The outbox relay publishes committed events to RabbitMQ exactly once, in outbox order."""

from __future__ import annotations

import pytest

from posgate.bus.outbox import add_events
from posgate.bus.rabbit import Broker, RabbitSink
from posgate.bus.relay import OutboxRelay
from posgate.bus.topology import CONTENT_TYPE, PARTITION_KEY_HEADER
from tests.integration.bus.conftest import Db, Rabbit, drain, event

pytestmark = pytest.mark.rabbitmq


async def test_committed_event_is_published_once_and_rolled_back_one_never(db: Db, rabbit: Rabbit) -> None:
    probe = await rabbit.probe_queue("probe", ["inventory.*"])
    committed = event(n=1)
    await db.write(committed)
    async with db.sessions() as session:
        await add_events(session, [event(n=2)])
        await session.rollback()

    broker = Broker(rabbit.settings.amqp_url)
    relay = OutboxRelay(db.sessions, RabbitSink(broker, rabbit.settings), batch_size=10)
    try:
        assert await relay.publish_pending() == 1
        assert await relay.publish_pending() == 0
        assert await db.unpublished() == 0
        received = await drain(probe, expect=1)
    finally:
        await broker.close()

    assert len(received) == 1
    message = received[0]
    assert message.message_id == committed.event_id
    assert message.type == committed.event_type
    assert message.routing_key == "inventory.stock_changed"
    assert message.body == committed.body
    assert message.headers[PARTITION_KEY_HEADER] == "store-1"
    assert message.headers["correlation-id"] == "corr-1"
    assert message.content_type == CONTENT_TYPE
    assert message.delivery_mode == 2


async def test_batches_are_published_in_outbox_order(db: Db, rabbit: Rabbit) -> None:
    probe = await rabbit.probe_queue("probe", ["inventory.#"])
    written = [event(n=n, store=f"store-{n % 3}") for n in range(120)]
    await db.write(*written[:70])
    await db.write(*written[70:])

    broker = Broker(rabbit.settings.amqp_url)
    relay = OutboxRelay(db.sessions, RabbitSink(broker, rabbit.settings), batch_size=50)
    try:
        assert [await relay.publish_pending() for _ in range(4)] == [50, 50, 20, 0]
        received = await drain(probe, expect=len(written))
    finally:
        await broker.close()

    assert [m.message_id for m in received] == [e.event_id for e in written]


async def test_event_nobody_is_bound_to_is_confirmed_and_marked(db: Db, rabbit: Rabbit) -> None:
    await db.write(event(routing_key="returns.completed"))
    broker = Broker(rabbit.settings.amqp_url)
    relay = OutboxRelay(db.sessions, RabbitSink(broker, rabbit.settings))
    try:
        assert await relay.publish_pending() == 1
    finally:
        await broker.close()
    assert await db.unpublished() == 0
