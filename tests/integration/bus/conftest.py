"""Fixtures for the event bus against the real RabbitMQ and real databases."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import aio_pika
import pytest
import sqlalchemy as sa
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue, AbstractRobustConnection
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from posgate.bus.outbox import OutgoingEvent, add_events
from posgate.bus.ports import IncomingEvent
from posgate.bus.topology import consumer_queue_name, dead_letter_queue_name, declare_consumer_queue
from posgate.db.engine import create_engine, session_factory
from posgate.db.tables import outbox
from posgate.settings import EventTransport, Settings
from tests.integration.bus.effects import create_effects_table


@dataclass
class Db:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]

    async def write(self, *events: OutgoingEvent) -> None:
        """Commit `events` through the outbox, as a producer's state change would."""
        async with self.sessions() as session, session.begin():
            await add_events(session, events)

    async def unpublished(self) -> int:
        async with self.engine.connect() as connection:
            query = sa.select(sa.func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))
            return int((await connection.execute(query)).scalar_one())


async def _db(url: str) -> AsyncIterator[Db]:
    engine = create_engine(url)
    await create_effects_table(engine)
    try:
        yield Db(engine, session_factory(engine))
    finally:
        await engine.dispose()


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Db]:
    """The outbox database, once on SQLite and once on PostgreSQL."""
    async for value in _db(database_url):
        yield value


@pytest.fixture
async def pg_db(postgres_url: str) -> AsyncIterator[Db]:
    """The outbox database on PostgreSQL (the production path)."""
    async for value in _db(postgres_url):
        yield value


@dataclass
class Rabbit:
    settings: Settings
    connection: AbstractRobustConnection
    consumers: list[str] = field(default_factory=list)

    async def probe_queue(self, name: str, binding_keys: Sequence[str]) -> AbstractQueue:
        """Declare a consumer queue the test reads by hand (sees every copy, duplicates included)."""
        self.consumers.append(name)
        channel = await self.connection.channel()
        return await declare_consumer_queue(channel, self.settings, name, binding_keys)

    async def dead_letter_queue(self) -> AbstractQueue:
        channel = await self.connection.channel()
        return await channel.get_queue(dead_letter_queue_name(self.settings))


def event(
    routing_key: str = "inventory.stock_changed", store: str | None = "store-1", n: int = 0
) -> OutgoingEvent:
    return OutgoingEvent(
        event_id=str(uuid.uuid4()),
        event_type="posgate.events.v1.StockChanged",
        routing_key=routing_key,
        body=f"body-{n}".encode(),
        partition_key=store,
        headers={"correlation-id": f"corr-{n}"},
    )


@dataclass
class Heard:
    """A broadcast listener that records what it heard and how often it was told it reconnected."""

    events: list[IncomingEvent] = field(default_factory=list)
    reconnects: int = 0

    async def __call__(self, incoming: IncomingEvent) -> None:
        self.events.append(incoming)

    async def reconnected(self) -> None:
        self.reconnects += 1

    def ids(self) -> list[str]:
        return [incoming.event_id for incoming in self.events]

    def heard(self, *events: OutgoingEvent):
        """A `wait_until` predicate: every one of `events` has been heard."""

        async def predicate() -> bool:
            return {item.event_id for item in events} <= set(self.ids())

        return predicate


async def drain(queue: AbstractQueue, *, expect: int, idle_s: float = 0.5, deadline_s: float = 20.0):
    """Read `queue` until `expect` messages arrived and then nothing more for `idle_s`."""
    received: list[AbstractIncomingMessage] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + deadline_s
    idle_since = loop.time()
    while loop.time() < deadline:
        message = await queue.get(fail=False)
        if message is not None:
            await message.ack()
            received.append(message)
            idle_since = loop.time()
        elif len(received) >= expect and loop.time() - idle_since >= idle_s:
            break
        else:
            await asyncio.sleep(0.02)
    return received


async def wait_until(predicate, *, deadline_s: float = 20.0, what: str = "condition") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + deadline_s
    while not await predicate():
        if loop.time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


@pytest.fixture
async def rabbit(amqp_url: str, unique_name: str) -> AsyncIterator[Rabbit]:
    """Bus settings with exchanges and queues unique to this test, all deleted afterwards."""
    settings = Settings(
        event_transport=EventTransport.RABBITMQ,
        amqp_url=SecretStr(amqp_url),
        events_exchange=f"posgate.events.{unique_name}",
        dead_letter_exchange=f"posgate.dlx.{unique_name}",
        consumer_max_attempts=3,
        consumer_prefetch=16,
        relay_batch_size=50,
        relay_poll_interval_s=0.05,
    )
    connection = await aio_pika.connect_robust(amqp_url, reconnect_interval=0.5)
    value = Rabbit(settings, connection)
    try:
        yield value
    finally:
        await connection.close()
        # A fresh connection: after a broker-restart test the robust one may still be
        # reconnecting ("Connection was not opened").
        async with await aio_pika.connect(amqp_url, timeout=30) as cleanup:
            channel = await cleanup.channel()
            for name in value.consumers:
                await channel.queue_delete(consumer_queue_name(settings, name))
            await channel.queue_delete(dead_letter_queue_name(settings))
            await channel.exchange_delete(settings.events_exchange)
            await channel.exchange_delete(settings.dead_letter_exchange)
