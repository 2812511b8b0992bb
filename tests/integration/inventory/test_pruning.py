"""Change-log pruning: old rows beyond the replay window go; recent ones and the window stay.

A change-log row holds the changes of one store and transaction: most tests here commit one
movement per transaction, so that rows and changes match one to one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from posgate.db.engine import create_engine, session_factory
from posgate.services.inventory.pruning import ChangeLogPruner, prune_changes
from posgate.services.inventory.tables import change_blocks
from tests.integration.inventory.test_ledger import NOW, P1, P2, apply, mv

DAY = timedelta(days=1)


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(database_url)
    yield session_factory(engine)
    await engine.dispose()


async def sequences(sessions, store: str) -> list[int]:
    """The sequences the store's logged changes still cover."""
    blocks = change_blocks.c
    query = select(blocks.first_sequence, blocks.last_sequence).where(blocks.store_id == store)
    async with sessions() as session:
        ranges = (await session.execute(query.order_by(blocks.last_sequence))).all()
    return [sequence for first, last in ranges for sequence in range(first, last + 1)]


async def apply_each(sessions, *commands) -> None:
    """One transaction per movement: one change-log row each."""
    for command in commands:
        await apply(sessions, command)


async def test_only_changes_both_old_and_behind_the_window_are_pruned(sessions) -> None:
    await apply_each(sessions, *(mv(f"a{n}", 1, position=P1) for n in range(30)))
    await apply(sessions, *(mv(f"b{n}", 1, position=P2) for n in range(5)))
    async with sessions.begin() as session:
        # The first 20 changes of s1 are a week old; the rest were committed just now.
        await session.execute(
            change_blocks.update()
            .where(change_blocks.c.store_id == "s1", change_blocks.c.last_sequence <= 20)
            .values(committed_at=NOW - 7 * DAY)
        )

    deleted = await prune_changes(sessions, NOW, retention=2 * DAY, keep=15)

    # s1: head 30, window 15 -> 1..15 may go, and are old: gone. 16..20 are old but in the window.
    assert deleted == 15
    assert await sequences(sessions, "s1") == list(range(16, 31))
    assert await sequences(sessions, "s2") == [1, 2, 3, 4, 5]  # recent: kept
    assert await prune_changes(sessions, NOW, retention=2 * DAY, keep=15) == 0


async def test_recent_changes_stay_whatever_the_window(sessions) -> None:
    await apply_each(sessions, *(mv(f"a{n}", 1) for n in range(10)))

    assert await prune_changes(sessions, NOW + DAY, retention=2 * DAY, keep=0) == 0
    assert await prune_changes(sessions, NOW + 3 * DAY, retention=2 * DAY, keep=0) == 10
    assert await sequences(sessions, "s1") == []


async def test_the_pruner_runs_in_the_background_until_stopped(sessions) -> None:
    await apply_each(sessions, *(mv(f"a{n}", 1) for n in range(12)))
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


async def test_a_row_goes_only_once_all_its_changes_are_behind_the_window(sessions) -> None:
    await apply(sessions, *(mv(f"a{n}", 1) for n in range(10)))  # one row: 1..10
    await apply(sessions, *(mv(f"b{n}", 1) for n in range(10)))  # one row: 11..20

    # Head 20, window 15: 1..5 may go, but they share a row with 6..10, which must stay.
    assert await prune_changes(sessions, NOW + 3 * DAY, retention=2 * DAY, keep=15) == 0
    assert await sequences(sessions, "s1") == list(range(1, 21))
    # Window 10: the whole first row is behind it.
    assert await prune_changes(sessions, NOW + 3 * DAY, retention=2 * DAY, keep=10) == 1
    assert await sequences(sessions, "s1") == list(range(11, 21))
