"""Broadcast listeners over RabbitMQ: every replica hears every matching event, no inbox."""

from __future__ import annotations

import aio_pika
import pytest
from aiormq.exceptions import ChannelLockedResource, ChannelNotFoundEntity

from posgate.bus.topology import PARTITION_KEY_HEADER
from posgate.bus.transport import EventBus, build_event_bus
from tests.integration.bus.conftest import Db, Heard, Rabbit, event, wait_until

pytestmark = pytest.mark.rabbitmq


def _replica(db: Db, rabbit: Rabbit) -> EventBus:
    # A poll far beyond the test's deadlines: events only leave because of `notify_committed`.
    settings = rabbit.settings.model_copy(update={"relay_poll_interval_s": 30.0})
    return build_event_bus(settings, db.sessions)


def _queue_name(bus: EventBus) -> str:
    name = bus._listeners.listeners[0].queue_name
    assert name is not None
    return name


async def test_event_committed_by_one_replica_reaches_listeners_on_every_replica(
    pg_db: Db, rabbit: Rabbit
) -> None:
    replicas = [_replica(pg_db, rabbit), _replica(pg_db, rabbit)]
    heard = [Heard(), Heard()]
    for bus, listener in zip(replicas, heard, strict=True):
        bus.listen(["inventory.stock_changed"], listener, on_reconnect=listener.reconnected)
        await bus.start()
    try:
        stock, routed = event(n=1), event(routing_key="orders.routed", n=2)
        await pg_db.write(stock, routed)
        replicas[0].notify_committed()
        for listener in heard:
            await wait_until(listener.heard(stock), deadline_s=10, what="every replica to hear the event")
        await wait_until(_all_published(pg_db), deadline_s=10, what="the outbox to be emptied")
    finally:
        for bus in replicas:
            await bus.stop()

    for listener in heard:
        assert listener.ids() == [stock.event_id], "each replica hears each matching event once"
        (incoming,) = listener.events
        assert (incoming.routing_key, incoming.body, incoming.partition_key) == (
            "inventory.stock_changed",
            stock.body,
            "store-1",
        )
        assert incoming.headers["correlation-id"] == "corr-1"
        assert PARTITION_KEY_HEADER not in incoming.headers
        assert listener.reconnects == 0


async def test_failing_callback_is_logged_and_the_listener_keeps_listening(
    pg_db: Db, rabbit: Rabbit, caplog: pytest.LogCaptureFixture
) -> None:
    bus = _replica(pg_db, rabbit)
    heard = Heard()
    first, second = event(n=1), event(n=2)

    async def flaky(incoming) -> None:
        if incoming.event_id == first.event_id:
            raise RuntimeError("stream gone")
        await heard(incoming)

    bus.listen(["inventory.*"], flaky)
    await bus.start()
    try:
        await pg_db.write(first)
        bus.notify_committed()
        await wait_until(_all_published(pg_db), deadline_s=10, what="the first event to be published")
        await pg_db.write(second)
        bus.notify_committed()
        await wait_until(heard.heard(second), deadline_s=10, what="the second event")
    finally:
        await bus.stop()
    assert heard.ids() == [second.event_id]
    assert any(
        record.name == "posgate.bus.listener" and "callback failed" in record.getMessage()
        for record in caplog.records
    )


async def test_a_burst_beyond_the_prefetch_is_heard_in_full_and_in_order(pg_db: Db, rabbit: Rabbit) -> None:
    # Acks go out once per burst (with `multiple`); were they held back past the prefetch,
    # the broker would stop delivering after `consumer_prefetch` events.
    bus = _replica(pg_db, rabbit)
    heard = Heard()
    bus.listen(["inventory.*"], heard)
    await bus.start()
    burst = [event(n=n) for n in range(3 * rabbit.settings.consumer_prefetch + 1)]
    try:
        await pg_db.write(*burst)
        bus.notify_committed()
        await wait_until(heard.heard(*burst), deadline_s=20, what="every event of the burst")
    finally:
        await bus.stop()
    assert heard.ids() == [e.event_id for e in burst]


async def test_listener_queue_is_private_to_its_connection_and_deleted_on_stop(
    pg_db: Db, rabbit: Rabbit, amqp_url: str
) -> None:
    bus = _replica(pg_db, rabbit)
    bus.listen(["inventory.#"], Heard())
    await bus.start()
    try:
        name = _queue_name(bus)
        assert name.startswith(f"{rabbit.settings.events_exchange}.listener.")
        with pytest.raises(ChannelLockedResource):  # exclusive: no other connection may use it
            await _passive_declare(amqp_url, name)
    finally:
        await bus.stop()
    with pytest.raises(ChannelNotFoundEntity):  # auto-delete: gone with its consumer
        await _passive_declare(amqp_url, name)


async def _passive_declare(amqp_url: str, name: str) -> None:
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        await channel.declare_queue(name, passive=True)
    finally:
        await connection.close()


def _all_published(db: Db):
    async def predicate() -> bool:
        return await db.unpublished() == 0

    return predicate
