"""Reservations under real concurrency on PostgreSQL: never oversold, one winner per race."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from posgate.errors import FailedPrecondition
from posgate.services.inventory import expiry, ledger, reservations
from posgate.services.inventory.domain import Kind, MovementCommand, Position
from posgate.services.inventory.reservations import ReserveCommand, State
from posgate.services.inventory.tables import movements, stock

from .logged import logged_changes

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=15)
A = Position("t1", "s1", "A")


@pytest.fixture
async def sessions(postgres_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    # Enough connections that the 200 callers really contend on the rows, not on the pool;
    # a long pool timeout because the reserves queue on one store lock by design.
    engine = create_async_engine(postgres_url, pool_size=50, max_overflow=0, pool_timeout=60)
    yield async_sessionmaker(engine, expire_on_commit=False)
    await engine.dispose()


async def move(sessions, key: str, kind: Kind, delta: int, position: Position = A) -> None:
    async with sessions.begin() as session:
        await ledger.apply_movements(session, [MovementCommand(key, position, kind, delta)], NOW)


async def reserve(sessions, rid: str, quantity: int, sku: str = "A") -> reservations.ReserveResult:
    async with sessions.begin() as session:
        return await reservations.reserve(
            session, ReserveCommand("t1", "s1", f"order-{rid}", rid, ((sku, quantity),), LATER), NOW
        )


async def level(sessions, sku: str = "A") -> tuple[int, int]:
    async with sessions() as session:
        row = (
            await session.execute(select(stock.c.on_hand, stock.c.reserved).where(stock.c.sku == sku))
        ).one()
        return row.on_hand, row.reserved


async def assert_change_log_sound(sessions) -> None:
    """Gap-free per store, and no recorded level ever held more than was on hand."""
    rows = [c for c in await logged_changes(sessions) if c.store_id == "s1"]
    assert [row.sequence for row in rows] == list(range(1, len(rows) + 1))
    assert all(row.reserved <= row.on_hand for row in rows)


async def test_200_concurrent_reserves_for_the_last_10_units_hold_exactly_10(sessions) -> None:
    await move(sessions, "in", Kind.RECEIPT, 25)
    await move(sessions, "till", Kind.SALE, -15)  # the last 10 units
    # Mostly single units, some pairs: with 190 singles, stock surely runs out completely.
    asked = {f"r{i:03}": 2 if i % 20 == 0 else 1 for i in range(200)}
    started = time.perf_counter()
    results = await asyncio.gather(*(reserve(sessions, rid, q) for rid, q in asked.items()))
    elapsed = time.perf_counter() - started
    print(f"200 concurrent reserves took {elapsed:.2f}s")  # reported, never asserted

    held = {r.reservation.reservation_id: r.reservation for r in results if r.reservation is not None}
    assert sum(asked[rid] for rid in held) == 10
    assert all(view.state is State.ACTIVE for view in held.values())
    refused = [r for r in results if r.reservation is None]
    assert len(held) + len(refused) == 200
    for result in refused:
        (shortage,) = result.shortages
        assert 0 <= shortage.available < shortage.requested
    assert await level(sessions) == (10, 10)
    reservation_changes = [c for c in await logged_changes(sessions) if c.kind == "reservation"]
    assert len(reservation_changes) == len(held)
    await assert_change_log_sound(sessions)


async def test_concurrent_retries_of_one_key_hold_once(sessions) -> None:
    await move(sessions, "in", Kind.RECEIPT, 10)
    results = await asyncio.gather(*(reserve(sessions, "same", 3) for _ in range(30)))
    views = {r.reservation for r in results}
    assert len(views) == 1 and None not in views
    assert await level(sessions) == (10, 3)
    await assert_change_log_sound(sessions)


async def attempt(action, sessions, rid: str) -> str:
    try:
        async with sessions.begin() as session:
            await action(session, "t1", rid, NOW)
    except FailedPrecondition as error:
        return error.reason
    return "won"


async def test_release_racing_commit_has_exactly_one_winner(sessions) -> None:
    await move(sessions, "in", Kind.RECEIPT, 100)
    rids = [f"r{i}" for i in range(20)]
    for rid in rids:
        await reserve(sessions, rid, 2)
    outcomes = await asyncio.gather(
        *(
            attempt(action, sessions, rid)
            for rid in rids
            for action in (reservations.release, reservations.commit)
        )
    )
    commits = 0
    for index, rid in enumerate(rids):
        released, committed = outcomes[2 * index], outcomes[2 * index + 1]
        assert sorted([released, committed]) in (
            ["RESERVATION_NOT_ACTIVE", "won"],
            ["RESERVATION_COMMITTED", "won"],
        ), rid
        commits += committed == "won"
    assert await level(sessions) == (100 - 2 * commits, 0)
    async with sessions() as session:
        sales = (
            await session.execute(
                select(func.count()).select_from(movements).where(movements.c.kind == "sale")
            )
        ).scalar_one()
    assert sales == commits
    await assert_change_log_sound(sessions)


async def test_concurrent_sweepers_expire_each_reservation_once(sessions) -> None:
    await move(sessions, "in", Kind.RECEIPT, 50)
    for i in range(30):
        await reserve(sessions, f"r{i}", 1)
    swept = await asyncio.gather(*(expiry.expire_due(sessions, LATER) for _ in range(4)))
    assert sum(swept) == 30
    assert await level(sessions) == (50, 0)
    await assert_change_log_sound(sessions)
