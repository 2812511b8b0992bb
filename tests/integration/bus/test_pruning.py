"""Retention of the bus's tables: published outbox rows and inbox rows go, unpublished rows stay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from posgate.bus import pruning
from posgate.bus.pruning import BusPruner, prune_inbox, prune_outbox
from posgate.bus.transport import build_event_bus
from posgate.db.tables import inbox, outbox
from posgate.settings import EventTransport, Settings
from tests.integration.bus.conftest import Db, event, wait_until

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


async def _outbox_rows(db: Db, published_at: datetime | None, count: int = 1) -> list[str]:
    """`count` committed outbox rows, marked published at `published_at` (None: unpublished)."""
    written = [event(n=n) for n in range(count)]
    await db.write(*written)
    ids = [item.event_id for item in written]
    async with db.sessions.begin() as session:
        await session.execute(
            sa.update(outbox)
            .where(outbox.c.event_id.in_(ids))
            .values(published_at=published_at, created_at=NOW - timedelta(days=3))
        )
    return ids


async def _remaining_outbox(db: Db) -> set[str]:
    async with db.engine.connect() as connection:
        return set((await connection.execute(sa.select(outbox.c.event_id))).scalars())


async def _inbox_rows(db: Db, consumer: str, received_at: datetime, count: int) -> list[str]:
    ids = [f"{consumer}-{received_at:%H%M}-{n}" for n in range(count)]
    async with db.sessions.begin() as session:
        rows = [{"consumer": consumer, "message_id": m, "received_at": received_at} for m in ids]
        await session.execute(sa.insert(inbox), rows)
    return ids


async def _remaining_inbox(db: Db) -> set[str]:
    async with db.engine.connect() as connection:
        return set((await connection.execute(sa.select(inbox.c.message_id))).scalars())


async def test_published_rows_older_than_the_cutoff_go_and_unpublished_ones_stay_however_old(db: Db) -> None:
    old = await _outbox_rows(db, NOW - timedelta(days=2), count=3)
    recent = await _outbox_rows(db, NOW - timedelta(hours=1))
    unpublished = await _outbox_rows(db, None)

    assert await prune_outbox(db.sessions, NOW - timedelta(days=1)) == len(old)

    assert await _remaining_outbox(db) == {*recent, *unpublished}


async def test_a_large_backlog_goes_in_chunks(db: Db, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pruning, "CHUNK", 2)
    await _outbox_rows(db, NOW - timedelta(days=2), count=5)
    kept = await _inbox_rows(db, "routing", NOW - timedelta(hours=1), count=2)
    await _inbox_rows(db, "routing", NOW - timedelta(days=9), count=5)

    assert await prune_outbox(db.sessions, NOW - timedelta(days=1)) == 5
    assert await prune_inbox(db.sessions, NOW - timedelta(days=7)) == 5

    assert await _remaining_outbox(db) == set()
    assert await _remaining_inbox(db) == set(kept)


async def test_a_prune_asked_to_stop_ends_after_the_chunk_in_progress(
    db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pruning, "CHUNK", 2)
    old = await _outbox_rows(db, NOW - timedelta(days=2), count=5)

    assert await prune_outbox(db.sessions, NOW - timedelta(days=1), stopping=lambda: True) == 2
    assert len(await _remaining_outbox(db)) == len(old) - 2

    assert await prune_outbox(db.sessions, NOW - timedelta(days=1)) == 3, "the next sweep goes on"


async def test_nothing_to_prune_deletes_nothing(db: Db) -> None:
    recent = await _outbox_rows(db, NOW - timedelta(minutes=5))

    assert await prune_outbox(db.sessions, NOW - timedelta(days=1)) == 0
    assert await prune_inbox(db.sessions, NOW - timedelta(days=1)) == 0
    assert await _remaining_outbox(db) == set(recent)


async def test_the_pruner_applies_each_retention_and_zero_keeps_rows_forever(db: Db) -> None:
    await _outbox_rows(db, NOW - timedelta(days=2))
    old_inbox = await _inbox_rows(db, "returns", NOW - timedelta(days=30), count=2)
    keep_inbox = BusPruner.from_seconds(db.sessions, outbox_s=86_400, inbox_s=0, interval_s=60)
    keep_inbox._clock = lambda: NOW

    await keep_inbox.sweep()

    assert await _remaining_outbox(db) == set()
    assert await _remaining_inbox(db) == set(old_inbox), "an inbox retention of 0 keeps its rows"

    inbox_only = BusPruner(
        db.sessions, outbox_retention=None, inbox_retention=timedelta(days=7), clock=lambda: NOW
    )
    await inbox_only.sweep()

    assert await _remaining_inbox(db) == set()


async def test_a_process_running_the_relay_prunes_on_start(db: Db) -> None:
    now = datetime.now(UTC)
    old = await _outbox_rows(db, now - timedelta(hours=3), count=2)
    recent = await _outbox_rows(db, now - timedelta(minutes=1))
    settings = Settings(
        event_transport=EventTransport.INPROCESS, outbox_retention_s=3600, relay_poll_interval_s=0.05
    )
    bus = build_event_bus(settings, db.sessions)
    await bus.start()
    try:

        async def old_rows_gone() -> bool:
            return not set(old) & await _remaining_outbox(db)

        await wait_until(old_rows_gone, deadline_s=10, what="the pruner's first sweep")
    finally:
        await bus.stop()
    assert await _remaining_outbox(db) == set(recent)
