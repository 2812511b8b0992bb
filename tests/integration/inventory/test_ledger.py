"""The ledger on real SQLite and PostgreSQL: exactly-once deltas, versioned counts, alerts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from posgate.bus.ports import OutgoingEvent
from posgate.contracts import events
from posgate.db.engine import create_engine, session_factory
from posgate.db.tables import outbox
from posgate.services.inventory import convert, ledger
from posgate.services.inventory.domain import CountCommand, Kind, MovementCommand, Position
from posgate.services.inventory.tables import movements, stock, store_sequences

from .logged import logged_changes

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
P1 = Position("t1", "s1", "sku-1")
P2 = Position("t1", "s2", "sku-1")
P3 = Position("t1", "s1", "sku-3")


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(database_url)
    yield session_factory(engine)
    await engine.dispose()


def mv(key: str, delta: int, kind: Kind = Kind.ADJUSTMENT, position: Position = P1) -> MovementCommand:
    return MovementCommand(key, position, kind, delta)


async def apply(
    sessions: async_sessionmaker[AsyncSession], *commands: MovementCommand
) -> list[ledger.Applied]:
    async with sessions.begin() as session:
        return await ledger.apply_movements(session, commands, NOW)


async def published(sessions: async_sessionmaker[AsyncSession]) -> list[str]:
    async with sessions() as session:
        rows = (await session.execute(select(outbox.c.routing_key).order_by(outbox.c.id))).scalars()
        return list(rows)


async def stock_changed(sessions: async_sessionmaker[AsyncSession]) -> list[events.pb.StockChanged]:
    query = (
        select(outbox.c.body).where(outbox.c.routing_key == "inventory.stock_changed").order_by(outbox.c.id)
    )
    async with sessions() as session:
        bodies = (await session.execute(query)).scalars().all()
    return [events.pb.EventEnvelope.FromString(body).inventory_stock_changed for body in bodies]


async def test_a_repeated_key_is_a_duplicate_and_changes_nothing(sessions) -> None:
    first = await apply(sessions, mv("k1", 10, Kind.RECEIPT), mv("k2", -3, Kind.SALE))
    assert [r.outcome for r in first] == [ledger.Outcome.APPLIED] * 2
    assert [r.level.on_hand for r in first if r.level] == [10, 7]
    again = await apply(sessions, mv("k2", -3, Kind.SALE), mv("k3", -1, Kind.SALE), mv("k3", -1, Kind.SALE))
    assert [r.outcome for r in again] == [
        ledger.Outcome.DUPLICATE,
        ledger.Outcome.APPLIED,
        ledger.Outcome.DUPLICATE,
    ]
    async with sessions() as session:
        on_hand = (await session.execute(select(stock.c.on_hand))).scalar_one()
        ledger_rows = (await session.execute(select(func.count()).select_from(movements))).scalar_one()
    sequences = [change.sequence for change in await logged_changes(sessions)]
    assert on_hand == 6
    assert ledger_rows == 3
    assert sequences == [1, 2, 3]  # gap-free per store: one change per applied movement


async def test_sequences_are_per_store(sessions) -> None:
    await apply(sessions, mv("a", 5, position=P1), mv("b", 5, position=P2), mv("c", 1, position=P1))
    rows = [(change.store_id, change.sequence) for change in await logged_changes(sessions)]
    assert rows == [("s1", 1), ("s1", 2), ("s2", 1)]


async def test_a_large_batch_numbers_each_store_in_order_and_sums_each_position(sessions) -> None:
    # 40 movements: on PostgreSQL the statement binds its columns as JSON (`JSON_FROM_ROWS`).
    batch = [mv(f"k{n}", n + 1, position=(P1, P2, P3)[n % 3]) for n in range(40)]
    results = await apply(sessions, *batch, mv("k0", 1000, position=P1))

    assert [r.outcome for r in results] == ["applied"] * 40 + ["duplicate"]
    by_store: dict[str, list[int]] = {}
    for command, result in zip(batch, results, strict=False):
        by_store.setdefault(command.position.store_id, []).append(result.level.sequence)
    assert by_store == {"s1": list(range(1, 28)), "s2": list(range(1, 14))}
    async with sessions() as session:
        query = select(stock.c.store_id, stock.c.sku, stock.c.on_hand)
        stored = {(store, sku): on_hand for store, sku, on_hand in await session.execute(query)}
    assert stored == {
        ("s1", "sku-1"): sum(n + 1 for n in range(40) if n % 3 == 0),
        ("s2", "sku-1"): sum(n + 1 for n in range(40) if n % 3 == 1),
        ("s1", "sku-3"): sum(n + 1 for n in range(40) if n % 3 == 2),
    }
    # The last movement of a position carries the level after the whole batch.
    assert results[39].level.on_hand == stored[("s1", "sku-1")]


async def test_each_applied_movement_carries_its_level_as_its_event_does(sessions) -> None:
    # Stores interleaved, so each store's event holds its changes in another order than the call.
    batch = [mv(f"m{n}", n + 1, position=(P1, P2, P3)[n % 3]) for n in range(9)]
    results = await apply(sessions, *batch, mv("m0", 1))

    carried = {
        change.idempotency_key: change.level
        for event in await stock_changed(sessions)
        for change in event.changes
    }
    for command, result in zip(batch, results, strict=False):
        assert result.level is not None and result.message is not None
        assert result.message == convert.level_to_pb(result.level)
        assert result.message == carried[command.idempotency_key]
    assert results[-1].outcome == ledger.Outcome.DUPLICATE
    assert results[-1].message is None


async def test_a_duplicate_in_a_later_batch_takes_no_sequence_number(sessions) -> None:
    await apply(sessions, mv("a", 5, position=P1), mv("b", 5, position=P2))
    await apply(sessions, mv("a", 5, position=P1), mv("d", 1, position=P1), mv("e", 1, position=P2))
    rows = [(c.store_id, c.sequence, c.delta) for c in await logged_changes(sessions)]
    async with sessions() as session:
        last = dict(
            (await session.execute(select(store_sequences.c.store_id, store_sequences.c.last_sequence))).all()
        )
    assert sorted(rows) == [("s1", 1, 5), ("s1", 2, 1), ("s2", 1, 5), ("s2", 2, 1)]
    assert last == {"s1": 2, "s2": 2}


async def test_one_store_id_under_two_tenants_keeps_two_sequences_in_one_batch(sessions) -> None:
    # 40 movements: the JSON form of the claim statement on PostgreSQL (32 rows or more).
    other = Position("t2", "s1", "sku-1")
    await apply(sessions, mv("seed", 1, position=other))
    spread = [P1, other, P2]
    results = await apply(sessions, *(mv(f"m{n}", 1, position=spread[n % 3]) for n in range(40)))
    by_store: dict[tuple[str, str], list[int]] = {}
    for n, result in enumerate(results):
        assert result.level is not None
        position = spread[n % 3]
        by_store.setdefault((position.tenant_id, position.store_id), []).append(result.level.sequence)
    assert by_store == {
        ("t1", "s1"): list(range(1, 15)),
        ("t2", "s1"): list(range(2, 15)),
        ("t1", "s2"): list(range(1, 14)),
    }
    async with sessions() as session:
        last = {(t, s): n for t, s, n in await session.execute(select(store_sequences))}
    assert last == {("t1", "s1"): 14, ("t2", "s1"): 14, ("t1", "s2"): 13}


async def test_every_change_is_an_event_and_crossings_announce_themselves(sessions) -> None:
    await apply(sessions, mv("in", 2, Kind.RECEIPT))
    await apply(
        sessions, mv("sold-1", -1, Kind.SALE), mv("sold-2", -1, Kind.SALE), mv("sold-3", -1, Kind.SALE)
    )
    await apply(sessions, mv("back", 5, Kind.RECEIPT))
    keys = await published(sessions)
    # One event per store and transaction, carrying every change of it.
    assert keys.count("inventory.stock_changed") == 3
    assert [[c.idempotency_key for c in e.changes] for e in await stock_changed(sessions)] == [
        ["in"],
        ["sold-1", "sold-2", "sold-3"],
        ["back"],
    ]
    assert keys.count("inventory.out_of_stock") == 1
    assert keys.count("inventory.negative_stock_flagged") == 1
    assert keys.count("inventory.back_in_stock") == 1
    assert keys.index("inventory.out_of_stock") < keys.index("inventory.negative_stock_flagged")


async def test_counts_apply_by_version_and_record_the_difference(sessions) -> None:
    await apply(sessions, mv("in", 10, Kind.RECEIPT))
    async with sessions.begin() as session:
        results = await ledger.set_counts(
            session,
            [CountCommand("c2", P1, 7, version=2), CountCommand("c1", P1, 99, version=1)],
            NOW,
        )
    assert [r.outcome for r in results] == [ledger.Outcome.APPLIED, ledger.Outcome.STALE]
    assert results[0].level is not None and results[0].level.on_hand == 7
    async with sessions() as session:
        deltas = list(
            (await session.execute(select(movements.c.delta).where(movements.c.kind == "count"))).scalars()
        )
    assert deltas == [-3]


def test_event_bodies_are_envelopes() -> None:
    assert OutgoingEvent  # imported for the type the outbox stores
    envelope = events.pb.EventEnvelope()
    assert envelope.WhichOneof("payload") is None


async def ledger_of(sessions: async_sessionmaker[AsyncSession], tenant: str) -> dict[str, list[tuple]]:
    """What one tenant's movements left in every table, without ids and times."""
    queries = {
        "stock": select(stock.c.store_id, stock.c.sku, stock.c.on_hand, stock.c.sequence, stock.c.alert),
        "movements": select(
            movements.c.idempotency_key, movements.c.store_id, movements.c.sku, movements.c.delta
        ),
    }
    tables = {"stock": stock, "movements": movements}
    found = {}
    async with sessions() as session:
        for name, query in queries.items():
            rows = await session.execute(query.where(tables[name].c.tenant_id == tenant))
            found[name] = sorted(tuple(row) for row in rows)
    found["changes"] = [
        (c.store_id, c.sequence, c.sku, c.on_hand, c.delta) for c in await logged_changes(sessions, tenant)
    ]
    carried = [
        (c.level.key.store_id, c.level.sequence, c.level.key.sku, c.level.on_hand, c.delta, c.idempotency_key)
        for event in await stock_changed(sessions)
        if event.level.key.tenant_id == tenant
        for c in event.changes
    ]
    found["events"] = sorted(carried)
    return found


async def test_a_batch_writes_the_same_ledger_as_one_movement_at_a_time(sessions) -> None:
    moves = [
        ("s1", "a", 5),
        ("s2", "a", 3),
        ("s1", "b", -2),
        ("s1", "a", -1),
        ("s2", "a", 4),
        ("s1", "a", -9),
    ]

    def commands(tenant: str) -> list[MovementCommand]:
        return [
            MovementCommand(f"k{i}", Position(tenant, store, sku), Kind.ADJUSTMENT, delta)
            for i, (store, sku, delta) in enumerate(moves)
        ]

    await apply(sessions, *commands("batched"))
    for command in commands("single"):
        await apply(sessions, command)
    assert await ledger_of(sessions, "batched") == await ledger_of(sessions, "single")
    assert len((await ledger_of(sessions, "batched"))["events"]) == len(moves)


async def test_each_change_row_names_the_event_that_carries_it(sessions) -> None:
    # 40 movements over two stores: on PostgreSQL the change log goes as JSON with the outbox insert.
    kinds = (Kind.RECEIPT, Kind.SALE, Kind.ADJUSTMENT)
    batch = [mv(f"k{n}", (1, -1, 2)[n % 3], kinds[n % 3], position=(P1, P2)[n % 2]) for n in range(40)]
    await apply(sessions, *batch)

    query = select(outbox.c.body).where(outbox.c.routing_key == "inventory.stock_changed")
    async with sessions() as session:
        envelopes = [events.pb.EventEnvelope.FromString(b) for b in (await session.execute(query)).scalars()]
    logged = [
        (c.store_id, c.sequence, c.event_id, c.cause, c.committed_at, c.reserved, c.count_version)
        for c in await logged_changes(sessions)
    ]
    carried_by = {
        (c.level.key.store_id, c.level.sequence): envelope.event_id
        for envelope in envelopes
        for c in envelope.inventory_stock_changed.changes
    }
    assert len({envelope.event_id for envelope in envelopes}) == 2  # one event, one new id per store
    assert sorted((store, sequence) for store, sequence, *_ in logged) == sorted(carried_by)
    assert {(s, q): e for s, q, e, *_ in logged} == carried_by
    assert sorted(cause for _s, _q, _e, cause, *_ in logged) == sorted(
        convert.cause_to_pb(c.kind) for c in batch
    )
    assert {(at, reserved, version) for *_, at, reserved, version in logged} == {(NOW, 0, 0)}


async def test_a_batch_over_many_stores_logs_one_row_per_store(sessions) -> None:
    # 40 stores: on PostgreSQL the change-log rows go in the JSON form of their insert (32 rows or more).
    batch = [mv(f"w{n}", n + 1, position=Position("t1", f"store-{n % 40:02}", "sku-1")) for n in range(80)]
    await apply(sessions, *batch)

    logged = await logged_changes(sessions, "t1")
    assert [(c.store_id, c.sequence, c.delta) for c in logged] == [
        (f"store-{store:02}", sequence, store + 40 * (sequence - 1) + 1)
        for store in range(40)
        for sequence in (1, 2)
    ]
    assert {c.committed_at for c in logged} == {NOW}
