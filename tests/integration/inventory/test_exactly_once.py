"""Property: shuffled, repeated delivery gives the same stock as applying each movement once."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from collections.abc import AsyncIterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from posgate.db.engine import create_engine, session_factory
from posgate.services.inventory import ledger
from posgate.services.inventory.batching import SPLIT_FROM, GroupCommitter
from posgate.services.inventory.domain import Kind, MovementCommand, Position
from posgate.services.inventory.tables import movements, stock

from .logged import logged_changes

KINDS = [
    Kind.SALE,
    Kind.RETURN,
    Kind.RECEIPT,
    Kind.TRANSFER_IN,
    Kind.TRANSFER_OUT,
    Kind.SHRINK,
    Kind.ADJUSTMENT,
]
SIGNS = {Kind.SALE: -1, Kind.TRANSFER_OUT: -1, Kind.SHRINK: -1}
COUNT = 5000


def random_movements(rng: random.Random) -> list[MovementCommand]:
    positions = [Position("t1", f"s{s}", f"sku-{k}") for s in range(4) for k in range(10)]
    made = []
    for i in range(COUNT):
        kind = rng.choice(KINDS)
        size = rng.randint(1, 50)
        sign = SIGNS.get(kind, 1) if kind is not Kind.ADJUSTMENT else rng.choice((-1, 1))
        made.append(MovementCommand(f"m-{i}", rng.choice(positions), kind, sign * size))
    return made


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(database_url, pool_size=10)
    yield session_factory(engine)
    await engine.dispose()


@pytest.fixture
def lanes(database_url: str) -> int:
    """Two commit lanes on PostgreSQL (stores split between them, calls spanning both), one on SQLite."""
    return 2 if database_url.startswith("postgresql") else 1


async def deliver_shuffled(
    sessions: async_sessionmaker[AsyncSession], made: list[MovementCommand], rng, lanes: int = 1
) -> None:
    """Every movement 1-3 times, shuffled, in random batches over 8 concurrent senders.

    Batches of 30 or more are split over the lanes, smaller ones go whole to the first lane:
    both kinds meet on the same stores, so the lanes also wait for each other's row locks.
    """
    deliveries = [m for m in made for _ in range(rng.randint(1, 3))]
    rng.shuffle(deliveries)
    batches: list[list[MovementCommand]] = []
    while deliveries:
        size = rng.randint(1, 60)
        batches.append(deliveries[:size])
        deliveries = deliveries[size:]
    committer = GroupCommitter(sessions, ledger.apply_movements, max_batch=400, lanes=lanes, split_from=30)
    committer.start()
    queue: asyncio.Queue[list[MovementCommand]] = asyncio.Queue()
    for batch in batches:
        queue.put_nowait(batch)

    async def sender() -> None:
        while not queue.empty():
            await committer.submit(queue.get_nowait())

    await asyncio.gather(*(sender() for _ in range(8)))
    await committer.stop()


async def final_stock(sessions: async_sessionmaker[AsyncSession]) -> dict[tuple[str, str], int]:
    async with sessions() as session:
        rows = await session.execute(select(stock.c.store_id, stock.c.sku, stock.c.on_hand))
        return {(r.store_id, r.sku): r.on_hand for r in rows}


@settings(max_examples=2, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(min_value=0, max_value=2**32))
async def test_shuffled_duplicated_delivery_equals_applying_once(sessions, lanes: int, seed: int) -> None:
    rng = random.Random(seed)
    made = random_movements(rng)
    # Fresh tenant per example: hypothesis reuses the function-scoped database.
    tenant = f"t-{seed}"
    made = [
        MovementCommand(
            m.idempotency_key, Position(tenant, m.position.store_id, m.position.sku), m.kind, m.delta
        )
        for m in made
    ]
    expected: dict[tuple[str, str], int] = defaultdict(int)
    for m in made:
        expected[(m.position.store_id, m.position.sku)] += m.delta

    await deliver_shuffled(sessions, made, rng, lanes)

    async with sessions() as session:
        rows = await session.execute(
            select(stock.c.store_id, stock.c.sku, stock.c.on_hand).where(stock.c.tenant_id == tenant)
        )
        actual = {(r.store_id, r.sku): r.on_hand for r in rows}
        ledger_rows = (
            await session.execute(
                select(func.count()).select_from(movements).where(movements.c.tenant_id == tenant)
            )
        ).scalar_one()
    logged = await logged_changes(sessions, tenant)
    sequences: dict[str, tuple[int, int]] = {}
    for change in logged:
        count, last = sequences.get(change.store_id, (0, 0))
        sequences[change.store_id] = (count + 1, max(last, change.sequence))
    assert actual == dict(expected)
    assert ledger_rows == COUNT
    # One change per applied movement, numbered 1..n per store without gaps.
    assert sum(n for n, _ in sequences.values()) == COUNT
    assert all(n == last for n, last in sequences.values())


@pytest.fixture
async def counted(sessions, lanes: int) -> AsyncIterator[tuple[GroupCommitter, list[int]]]:
    """A started committer on `lanes` lanes, and the number of changes of each transaction it commits."""
    committed: list[int] = []
    committer = GroupCommitter(
        sessions, ledger.apply_movements, lanes=lanes, on_commit=lambda done: committed.append(len(done))
    )
    committer.start()
    yield committer, committed
    await committer.stop()


async def test_a_call_split_across_lanes_gets_its_results_in_its_own_order(counted, lanes: int) -> None:
    committer, committed = counted
    # Stores hash to both lanes; each movement's delta names its place in the call.
    call = [
        MovementCommand(f"split-{i}", Position("t-split", f"s{i % 8}", "sku"), Kind.RECEIPT, i + 1)
        for i in range(SPLIT_FROM)
    ]
    results = await committer.submit(call)
    first_call = list(committed)
    again = await committer.submit(call)
    # One transaction per lane holding a share of the stores.
    assert len(first_call) == lanes and sum(first_call) == SPLIT_FROM
    assert [r.outcome for r in results] == [ledger.Outcome.APPLIED] * SPLIT_FROM
    assert [r.level.position.store_id for r in results if r.level] == [f"s{i % 8}" for i in range(SPLIT_FROM)]
    # Per store, the level after each movement is the running sum of its deltas, in call order.
    running: dict[str, int] = defaultdict(int)
    for i, result in enumerate(results):
        running[f"s{i % 8}"] += i + 1
        assert result.level is not None and result.level.on_hand == running[f"s{i % 8}"]
    assert [r.outcome for r in again] == [ledger.Outcome.DUPLICATE] * SPLIT_FROM


async def test_a_call_below_the_split_size_commits_whole_in_one_transaction(counted) -> None:
    committer, committed = counted
    size = SPLIT_FROM - 1
    # The same eight stores as above: split, they would go to both lanes.
    call = [
        MovementCommand(f"whole-{i}", Position("t-whole", f"s{i % 8}", "sku"), Kind.RECEIPT, 1)
        for i in range(size)
    ]
    results = await committer.submit(call)
    assert committed == [size]
    assert [r.outcome for r in results] == [ledger.Outcome.APPLIED] * size
