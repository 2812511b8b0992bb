"""What the WatchStock integration tests share: a ledger that reads back its events, a stream reader.

`sessions` and `hub` are fixtures, offered to every module of this folder by its conftest.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from posgate.bus.ports import IncomingEvent
from posgate.contracts import events, inventory
from posgate.db.engine import create_engine, session_factory
from posgate.db.tables import outbox
from posgate.services.inventory import convert, journal, ledger
from posgate.services.inventory.domain import Kind, Level, MovementCommand, Position
from posgate.services.inventory.streams import StockHub

pb = inventory.pb
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
KIND_OF_CAUSE = {**{value: kind for value, kind in convert.KIND_FROM_PB.items()}, 0: Kind.RESERVATION}


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(database_url)
    yield session_factory(engine)
    await engine.dispose()


@pytest.fixture
async def hub(sessions) -> AsyncIterator[StockHub]:
    value = StockHub(sessions)
    await value.start()
    yield value
    await value.stop()


class Ledger:
    """Commits movements and hands back what the journal recorded (read from the outbox)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions
        self.outbox_id = 0
        self.keys = 0
        self.last_events: list[IncomingEvent] = []

    async def move(self, *moves: tuple[str, str, int], tenant: str = "t1") -> list[journal.Change]:
        """Apply (store, sku, delta) movements in one transaction; return the committed changes."""
        commands = []
        for store, sku, delta in moves:
            self.keys += 1
            commands.append(
                MovementCommand(f"k{self.keys}", Position(tenant, store, sku), Kind.ADJUSTMENT, delta)
            )
        async with self.sessions.begin() as session:
            await ledger.apply_movements(session, commands, NOW)
        self.last_events = await self.events()
        found = [change for e in self.last_events for change in changes_from_event(e)]
        # Events come per store; hand the changes back in the order the movements were given.
        return sorted(found, key=lambda change: int(change.idempotency_key[1:]))

    async def events(self) -> list[IncomingEvent]:
        """The `inventory.stock_changed` events written since the last call, as the bus delivers them."""
        query = (
            select(outbox)
            .where(outbox.c.id > self.outbox_id, outbox.c.routing_key == "inventory.stock_changed")
            .order_by(outbox.c.id)
        )
        async with self.sessions() as session:
            rows = (await session.execute(query)).mappings().all()
        if rows:
            self.outbox_id = rows[-1]["id"]
        return [
            IncomingEvent(
                r["event_id"], r["event_type"], r["routing_key"], r["body"], r["partition_key"], r["headers"]
            )
            for r in rows
        ]


def changes_from_event(event: IncomingEvent) -> list[journal.Change]:
    """The changes one `inventory.stock_changed` event carries, in order."""
    envelope = events.pb.EventEnvelope.FromString(event.body)
    assert envelope.schema_version == journal.STOCK_CHANGED_SCHEMA
    found = []
    for entry in envelope.inventory_stock_changed.changes:
        key = entry.level.key
        level = Level(
            Position(key.tenant_id, key.store_id, key.sku),
            entry.level.on_hand,
            entry.level.reserved,
            entry.level.sequence,
            entry.level.updated_at.ToDatetime(tzinfo=UTC),
            entry.level.count_version,
        )
        found.append(
            journal.Change(
                level, entry.delta, KIND_OF_CAUSE[entry.cause], entry.idempotency_key, envelope.event_id
            )
        )
    return found


class Stream:
    """A WatchStock client reading straight from the hub's iterator."""

    def __init__(self, hub: StockHub, **request) -> None:
        self.iterator = hub.watch(pb.WatchStockRequest(**request))

    async def next(self, within: float = 20.0) -> pb.WatchStockResponse:
        return await asyncio.wait_for(anext(self.iterator), within)

    async def snapshot(self) -> tuple[list[pb.StockLevel], dict[str, int]]:
        """Read snapshot chunks up to the complete one."""
        levels: list[pb.StockLevel] = []
        while True:
            message = await self.next()
            assert message.WhichOneof("update") == "snapshot", message
            levels.extend(message.snapshot.levels)
            if message.snapshot.complete:
                return levels, dict(message.snapshot.store_sequences)

    async def changes(self, count: int) -> list[pb.StockChange]:
        found = []
        for _ in range(count):
            message = await self.next()
            assert message.WhichOneof("update") == "change", message
            found.append(message.change)
        return found

    async def silent(self, seconds: float = 0.3) -> bool:
        """Whether nothing more arrives for a while (ends the stream: use last)."""
        try:
            message = await self.next(seconds)
        except TimeoutError:
            return True
        pytest.fail(f"unexpected message {message}")

    async def close(self) -> None:
        await self.iterator.aclose()


def seqs(changes: list[pb.StockChange]) -> list[tuple[str, int]]:
    return [(c.level.key.store_id, c.level.sequence) for c in changes]
