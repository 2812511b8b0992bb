"""Two inventory replicas on one PostgreSQL database: a change made through one reaches streams on both."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import aio_pika
import pytest
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from posgate.bus.topology import dead_letter_queue_name
from posgate.bus.transport import EventBus, build_event_bus
from posgate.db.engine import create_engine, session_factory
from posgate.services.inventory.streams import StockHub
from posgate.settings import EventTransport, Settings
from tests.integration.inventory.watching import Ledger, Stream, seqs

pytestmark = [pytest.mark.postgres, pytest.mark.rabbitmq]


@dataclass
class Replica:
    """One inventory process: its own engine, hub and event bus."""

    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    hub: StockHub
    bus: EventBus

    async def stop(self) -> None:
        await self.hub.stop()
        await self.bus.stop()
        await self.engine.dispose()


@pytest.fixture
async def settings(amqp_url: str, unique_name: str) -> AsyncIterator[Settings]:
    """Bus settings with exchanges unique to this test, deleted afterwards."""
    value = Settings(
        event_transport=EventTransport.RABBITMQ,
        amqp_url=SecretStr(amqp_url),
        events_exchange=f"posgate.events.{unique_name}",
        dead_letter_exchange=f"posgate.dlx.{unique_name}",
        relay_poll_interval_s=0.05,
    )
    yield value
    connection = await aio_pika.connect_robust(amqp_url)
    channel = await connection.channel()
    await channel.queue_delete(dead_letter_queue_name(value))
    await channel.exchange_delete(value.events_exchange)
    await channel.exchange_delete(value.dead_letter_exchange)
    await connection.close()


@pytest.fixture
async def replicas(postgres_url: str, settings: Settings) -> AsyncIterator[list[Replica]]:
    started: list[Replica] = []
    for _ in range(2):
        engine = create_engine(postgres_url)
        sessions = session_factory(engine)
        hub = StockHub(sessions)
        bus = build_event_bus(settings, sessions)
        bus.listen(["inventory.stock_changed"], hub.on_event, on_reconnect=hub.resync)
        await hub.start()
        await bus.start()
        started.append(Replica(engine, sessions, hub, bus))
    yield started
    for replica in started:
        await replica.stop()


async def test_a_change_made_through_one_replica_reaches_streams_held_by_the_other(replicas) -> None:
    a, b = replicas
    book = Ledger(a.sessions)
    await book.move(("s1", "a", 5))
    a.bus.notify_committed()
    on_b = Stream(b.hub, tenant_id="t1", store_ids=["s1"])
    on_a = Stream(a.hub, tenant_id="t1")
    wide_on_b = Stream(b.hub, tenant_id="t1", skus=["b"])
    assert (await on_b.snapshot())[1] == {"s1": 1}
    assert (await on_a.snapshot())[1] == {"s1": 1}
    assert (await wide_on_b.snapshot())[1] == {"s1": 1}

    changes = await book.move(("s1", "a", -1), ("s2", "b", 3), ("s1", "b", 2))
    a.hub.publish(changes)  # what replica A does after its commit...
    a.bus.notify_committed()  # ...and its relay tells every replica through RabbitMQ

    received = await on_b.changes(2)
    assert seqs(received) == [("s1", 2), ("s1", 3)]
    assert [c.event_id for c in received] == [
        c.event_id for c in changes if c.level.position.store_id == "s1"
    ]
    # In order per store; stores are independent.
    assert sorted(seqs(await wide_on_b.changes(2))) == [("s1", 3), ("s2", 1)]
    # Replica A hears its own changes twice (published locally and from the bus): once on the stream.
    assert sorted(seqs(await on_a.changes(3))) == [("s1", 2), ("s1", 3), ("s2", 1)]
    for stream in (on_a, on_b, wide_on_b):
        assert await stream.silent(0.5)
