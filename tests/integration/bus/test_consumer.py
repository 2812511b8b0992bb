"""RabbitMQ consumers apply each event once, ack after commit, and dead-letter with the reason."""

from __future__ import annotations

import aio_pika
import pytest
import sqlalchemy as sa

from posgate.bus.consumer import RabbitConsumer
from posgate.bus.ports import IncomingEvent, PoisonMessage
from posgate.bus.rabbit import Broker, RabbitSink
from posgate.bus.topology import (
    ATTEMPTS_HEADER,
    CONSUMER_HEADER,
    PARTITION_KEY_HEADER,
    REASON_HEADER,
    declare_events_exchange,
)
from posgate.bus.transport import build_event_bus
from tests.integration.bus.conftest import Db, Rabbit, drain, event, wait_until
from tests.integration.bus.effects import effect_rows, effects, recording_handler

pytestmark = pytest.mark.rabbitmq


async def test_bus_delivers_committed_events_once_even_when_published_twice(db: Db, rabbit: Rabbit) -> None:
    rabbit.consumers.append("stock")
    bus = build_event_bus(rabbit.settings, db.sessions)
    bus.subscribe("stock", ["inventory.*"], recording_handler("stock"))
    written = [event(n=n, store=f"store-{n % 2}") for n in range(10)]
    await db.write(*written)
    await db.write(event(routing_key="orders.routed"))  # bound to nobody here
    await bus.start()
    try:
        await wait_until(lambda: _effects_at_least(db, 10), what="the consumer to apply 10 events")
        # A relay that crashed between the confirm and its commit publishes the batch again.
        broker = Broker(rabbit.settings.amqp_url)
        try:
            await RabbitSink(broker, rabbit.settings).publish(written[:3])
        finally:
            await broker.close()
        probe = await rabbit.dead_letter_queue()  # nothing may be dead-lettered meanwhile
        assert await drain(probe, expect=0, idle_s=1.0) == []
    finally:
        await bus.stop()
    rows = await effect_rows(db.engine)
    assert sorted(event_id for _, event_id, _ in rows) == sorted(e.event_id for e in written)
    assert await bus.healthy() is False


async def _effects_at_least(db: Db, count: int) -> bool:
    return len(await effect_rows(db.engine)) >= count


async def test_failing_handler_is_retried_then_dead_lettered_with_the_reason(db: Db, rabbit: Rabbit) -> None:
    rabbit.consumers.append("fragile")
    attempts: list[int] = []

    async def fail(incoming: IncomingEvent, session) -> None:
        attempts.append(incoming.attempt)
        await session.execute(
            sa.insert(effects).values(consumer="fragile", event_id=incoming.event_id, attempt=1)
        )
        raise ValueError(f"cannot apply {incoming.event_id}")

    broker = Broker(rabbit.settings.amqp_url)
    consumer = RabbitConsumer("fragile", ["inventory.*"], fail, db.sessions, rabbit.settings, broker=broker)
    await consumer.start()
    bad = event()
    try:
        await RabbitSink(broker, rabbit.settings).publish([bad])
        dead = await drain(await rabbit.dead_letter_queue(), expect=1)
    finally:
        await consumer.stop()
        await broker.close()

    assert len(dead) == 1
    headers = dead[0].headers
    assert headers[REASON_HEADER] == f"ValueError: cannot apply {bad.event_id}"
    assert headers[CONSUMER_HEADER] == "fragile"
    assert headers[ATTEMPTS_HEADER] == rabbit.settings.consumer_max_attempts == 3
    assert headers[PARTITION_KEY_HEADER] == "store-1"
    assert dead[0].message_id == bad.event_id
    assert dead[0].body == bad.body
    assert dead[0].routing_key == bad.routing_key
    assert attempts == [1, 2, 3]
    assert await effect_rows(db.engine) == [], "every failed attempt must roll back its effect"


async def test_poison_and_malformed_messages_are_dead_lettered_at_once(db: Db, rabbit: Rabbit) -> None:
    rabbit.consumers.append("strict")
    calls: list[str] = []

    async def reject(incoming: IncomingEvent, session) -> None:
        calls.append(incoming.event_id)
        raise PoisonMessage("body is not a StockChanged envelope")

    broker = Broker(rabbit.settings.amqp_url)
    consumer = RabbitConsumer("strict", ["inventory.*"], reject, db.sessions, rabbit.settings, broker=broker)
    await consumer.start()
    poison = event()
    try:
        await RabbitSink(broker, rabbit.settings).publish([poison])
        channel = await broker.channel()
        exchange = await declare_events_exchange(channel, rabbit.settings)
        # No `type`: the bus can not tell what the event is.
        await exchange.publish(aio_pika.Message(b"?", message_id="no-type"), "inventory.stock_changed")
        dead = await drain(await rabbit.dead_letter_queue(), expect=2)
    finally:
        await consumer.stop()
        await broker.close()

    reasons = {message.message_id: message.headers[REASON_HEADER] for message in dead}
    assert reasons == {
        poison.event_id: "PoisonMessage: body is not a StockChanged envelope",
        "no-type": "malformed message: no type (the event type)",
    }
    assert calls == [poison.event_id]
