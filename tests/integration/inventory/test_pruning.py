"""Change-log pruning: old changes beyond the replay window go; recent ones and the window stay."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from posgate.db.engine import create_engine, session_factory
from posgate.services.inventory.pruning import ChangeLogPruner, prune_changes
from posgate.services.inventory.tables import changes
from tests.integration.inventory.test_ledger import NOW, P1, P2, apply, mv

DAY = timedelta(days=1)


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(database_url)
    yield session_factory(engine)
    await engine.dispose()


async def sequences(sessions, store: str) -> list[int]:
    async with sessions() as session:
        query = select(changes.c.sequence).where(changes.c.store_id == store).order_by(changes.c.sequence)
        return list((await session.execute(query)).scalars())


async def test_only_changes_both_old_and_behind_the_window_are_pruned(sessions) -> None:
    await apply(sessions, *(mv(f"a{n}", 1, position=P1) for n in range(30)))
    await apply(sessions, *(mv(f"b{n}", 1, position=P2) for n in range(5)))
    async with sessions.begin() as session:
        # The first 20 changes of s1 are a week old; the rest were committed just now.
        await session.execute(
            changes.update()
            .where(changes.c.store_id == "s1", changes.c.sequence <= 20)
            .values(committed_at=NOW - 7 * DAY)
        )

    deleted = await prune_changes(sessions, NOW, retention=2 * DAY, keep=15)

    # s1: head 30, window 15 -> 1..15 may go, and are old: gone. 16..20 are old but in the window.
    assert deleted == 15
    assert await sequences(sessions, "s1") == list(range(16, 31))
    assert await sequences(sessions, "s2") == [1, 2, 3, 4, 5]  # recent: kept
    assert await prune_changes(sessions, NOW, retention=2 * DAY, keep=15) == 0


async def test_recent_changes_stay_whatever_the_window(sessions) -> None:
    await apply(sessions, *(mv(f"a{n}", 1) for n in range(10)))

    assert await prune_changes(sessions, NOW + DAY, retention=2 * DAY, keep=0) == 0
    assert await prune_changes(sessions, NOW + 3 * DAY, retention=2 * DAY, keep=0) == 10
    assert await sequences(sessions, "s1") == []


async def test_the_pruner_runs_in_the_background_until_stopped(sessions) -> None:
    await apply(sessions, *(mv(f"a{n}", 1) for n in range(12)))
    pruner = ChangeLogPruner(sessions, retention=DAY, interval_s=0.05, keep=4, clock=lambda: NOW + 2 * DAY)

    pruner.start()
    try:
        for _ in range(100):
            if len(await sequences(sessions, "s1")) == 4:
                break
            await asyncio.sleep(0.05)
    finally:
        await pruner.stop()

    assert await sequences(sessions, "s1") == [9, 10, 11, 12]
