"""Reservations on real SQLite and PostgreSQL: all or nothing, idempotent, expiring, in sequence."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from posgate.contracts import events, inventory
from posgate.db.engine import create_engine, session_factory
from posgate.db.tables import outbox
from posgate.errors import FailedPrecondition, NotFound
from posgate.services.inventory import expiry, ledger, reservations
from posgate.services.inventory.domain import Kind, MovementCommand, Position
from posgate.services.inventory.reservations import ReserveCommand, Shortage, State
from posgate.services.inventory.tables import movements, reservation_lines, stock
from posgate.services.inventory.tables import reservations as reservations_table

from .logged import logged_changes

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=15)


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(database_url)
    yield session_factory(engine)
    await engine.dispose()


async def receive(sessions, sku: str, quantity: int, store: str = "s1") -> None:
    async with sessions.begin() as session:
        await ledger.apply_movements(
            session,
            [
                MovementCommand(
                    f"in-{store}-{sku}-{quantity}", Position("t1", store, sku), Kind.RECEIPT, quantity
                )
            ],
            NOW,
        )


def command(
    rid: str, *lines: tuple[str, int], store: str = "s1", expires_at: datetime = LATER
) -> ReserveCommand:
    return ReserveCommand("t1", store, f"order-{rid}", rid, tuple(lines), expires_at)


async def reserve(sessions, rid: str, *lines: tuple[str, int], **kwargs) -> reservations.ReserveResult:
    async with sessions.begin() as session:
        return await reservations.reserve(session, command(rid, *lines, **kwargs), NOW)


async def release(sessions, rid: str, *, expired: bool = False) -> reservations.ReservationView:
    async with sessions.begin() as session:
        return await reservations.release(session, "t1", rid, NOW, expired=expired)


async def commit(sessions, rid: str):
    async with sessions.begin() as session:
        return await reservations.commit(session, "t1", rid, NOW)


async def levels(sessions, store: str = "s1") -> dict[str, tuple[int, int]]:
    """SKU -> (on_hand, reserved)."""
    async with sessions() as session:
        rows = await session.execute(
            select(stock.c.sku, stock.c.on_hand, stock.c.reserved).where(stock.c.store_id == store)
        )
        return {sku: (on_hand, reserved) for sku, on_hand, reserved in rows}


async def change_log(sessions, store: str = "s1") -> list[tuple[int, str, int, int, int, str]]:
    """(sequence, sku, on_hand, reserved, delta, cause) in sequence order."""
    return [
        (c.sequence, c.sku, c.on_hand, c.reserved, c.delta, c.kind)
        for c in await logged_changes(sessions)
        if c.store_id == store
    ]


async def routing_keys(sessions) -> list[str]:
    async with sessions() as session:
        return list((await session.execute(select(outbox.c.routing_key).order_by(outbox.c.id))).scalars())


async def assert_gap_free(sessions, store: str = "s1") -> None:
    log = await change_log(sessions, store)
    assert [row[0] for row in log] == list(range(1, len(log) + 1))
    assert all(on_hand >= reserved for _, _, on_hand, reserved, _, _ in log)


async def test_reserve_holds_every_line_and_records_a_change_per_line(sessions) -> None:
    await receive(sessions, "A", 10)
    await receive(sessions, "B", 5)
    result = await reserve(sessions, "r1", ("B", 2), ("A", 3))
    assert result.shortages == ()
    view = result.reservation
    assert view is not None
    assert (view.state, view.lines, view.order_id) == (State.ACTIVE, (("A", 3), ("B", 2)), "order-r1")
    assert view.expires_at == LATER
    assert await levels(sessions) == {"A": (10, 3), "B": (5, 2)}
    assert (await change_log(sessions))[2:] == [
        (3, "A", 10, 3, 0, "reservation"),
        (4, "B", 5, 2, 0, "reservation"),
    ]
    await assert_gap_free(sessions)
    # Two receipts, then one event for the store carrying both reservation lines.
    assert (await routing_keys(sessions)).count("inventory.stock_changed") == 3
    async with sessions() as session:
        assert await reservations.get(session, "t1", "r1") == view
        assert await reservations.get(session, "t1", "nope") is None


async def test_a_short_line_reserves_nothing_and_reports_what_is_available(sessions) -> None:
    await receive(sessions, "A", 10)
    await receive(sessions, "B", 1)
    async with sessions.begin() as session:
        short = await reservations.reserve(session, command("r1", ("A", 3), ("B", 2), ("C", 1)), NOW)
        # The savepoint kept the caller's transaction usable: this one commits with it.
        kept = await reservations.reserve(session, command("r2", ("A", 4)), NOW)
    assert short.reservation is None
    assert short.shortages == (Shortage("B", 2, 1), Shortage("C", 1, 0))
    assert kept.reservation is not None
    assert await levels(sessions) == {"A": (10, 4), "B": (1, 0)}
    async with sessions() as session:
        assert await reservations.get(session, "t1", "r1") is None
        held = await session.execute(select(reservation_lines.c.reservation_id).distinct())
        assert list(held.scalars()) == ["r2"]
    # The rolled-back attempt allocated no sequence: r2's change directly follows the receipts.
    assert [row[0] for row in await change_log(sessions)] == [1, 2, 3]
    await assert_gap_free(sessions)


async def test_a_refused_key_may_be_retried_once_stock_arrives(sessions) -> None:
    await receive(sessions, "A", 1)
    assert (await reserve(sessions, "r1", ("A", 2))).reservation is None
    await receive(sessions, "A", 5)
    retried = await reserve(sessions, "r1", ("A", 2))
    assert retried.reservation is not None
    assert await levels(sessions) == {"A": (6, 2)}


async def test_reserve_release_and_commit_are_idempotent(sessions) -> None:
    await receive(sessions, "A", 10)
    first = await reserve(sessions, "r1", ("A", 3))
    again = await reserve(sessions, "r1", ("A", 3))
    assert again == first
    assert await levels(sessions) == {"A": (10, 3)}
    released = await release(sessions, "r1")
    assert released.state is State.RELEASED
    assert await release(sessions, "r1") == released
    assert await release(sessions, "r1", expired=True) == released
    # A reserve retried after the release returns the released reservation: no new hold.
    assert (await reserve(sessions, "r1", ("A", 3))).reservation == released
    assert await levels(sessions) == {"A": (10, 0)}

    await reserve(sessions, "r2", ("A", 4))
    view, after = await commit(sessions, "r2")
    view_again, after_again = await commit(sessions, "r2")
    assert view.state is State.COMMITTED
    assert view_again == view
    assert [(lv.on_hand, lv.reserved) for lv in after] == [(6, 0)]
    assert after_again == after
    assert await levels(sessions) == {"A": (6, 0)}
    await assert_gap_free(sessions)


async def test_commit_sells_exactly_once_through_the_ledger(sessions) -> None:
    await receive(sessions, "A", 10)
    await receive(sessions, "B", 2)
    await reserve(sessions, "r1", ("A", 3), ("B", 2))
    _, after = await commit(sessions, "r1")
    await commit(sessions, "r1")
    assert [(lv.position.sku, lv.on_hand, lv.reserved, lv.available) for lv in after] == [
        ("A", 7, 0, 7),
        ("B", 0, 0, 0),
    ]
    async with sessions() as session:
        sales = (
            await session.execute(
                select(movements.c.idempotency_key, movements.c.delta, movements.c.reference)
                .where(movements.c.kind == "sale")
                .order_by(movements.c.sku)
            )
        ).all()
    assert [tuple(row) for row in sales] == [("r1#commit#A", -3, "order-r1"), ("r1#commit#B", -2, "order-r1")]
    assert (await change_log(sessions))[-2:] == [(5, "A", 7, 0, -3, "sale"), (6, "B", 0, 0, -2, "sale")]
    await assert_gap_free(sessions)


async def test_release_and_commit_refuse_the_wrong_state(sessions) -> None:
    await receive(sessions, "A", 10)
    await reserve(sessions, "sold", ("A", 1))
    await reserve(sessions, "freed", ("A", 1))
    await commit(sessions, "sold")
    await release(sessions, "freed")
    with pytest.raises(FailedPrecondition) as committed:
        await release(sessions, "sold")
    assert committed.value.reason == "RESERVATION_COMMITTED"
    with pytest.raises(FailedPrecondition) as inactive:
        await commit(sessions, "freed")
    assert inactive.value.reason == "RESERVATION_NOT_ACTIVE"
    for action in (release, commit):
        with pytest.raises(NotFound) as missing:
            await action(sessions, "unknown")
        assert missing.value.reason == "RESERVATION_NOT_FOUND"
    assert await levels(sessions) == {"A": (9, 0)}


async def test_expired_reservations_free_their_stock_by_themselves(sessions) -> None:
    await receive(sessions, "A", 5)
    await reserve(sessions, "soon", ("A", 2), expires_at=NOW + timedelta(minutes=1))
    await reserve(sessions, "late", ("A", 1), expires_at=NOW + timedelta(hours=1))
    assert await expiry.expire_due(sessions, NOW) == 0
    assert await expiry.expire_due(sessions, NOW + timedelta(minutes=2)) == 1
    assert await expiry.expire_due(sessions, NOW + timedelta(minutes=2)) == 0
    assert await levels(sessions) == {"A": (5, 1)}
    async with sessions() as session:
        soon = await reservations.get(session, "t1", "soon")
        bodies = (
            (
                await session.execute(
                    select(outbox.c.body).where(outbox.c.routing_key == "inventory.reservation_expired")
                )
            )
            .scalars()
            .all()
        )
    assert soon is not None and soon.state is State.EXPIRED
    assert len(bodies) == 1
    envelope = events.pb.EventEnvelope.FromString(bodies[0])
    announced = events.payload_of(envelope).reservation
    assert (envelope.store_id, announced.reservation_id) == ("s1", "soon")
    assert announced.state == inventory.pb.RESERVATION_STATE_EXPIRED
    with pytest.raises(FailedPrecondition):
        await commit(sessions, "soon")
    await assert_gap_free(sessions)


async def test_the_sweeper_expires_in_the_background(sessions) -> None:
    await receive(sessions, "A", 5)
    await reserve(sessions, "r1", ("A", 5))
    sweeper = expiry.ReservationSweeper(sessions, interval_s=0.05, clock=lambda: LATER + timedelta(seconds=1))
    sweeper.start()
    try:
        for _ in range(200):
            if (await levels(sessions))["A"] == (5, 0):
                break
            await asyncio.sleep(0.05)
    finally:
        await sweeper.stop()
    assert await levels(sessions) == {"A": (5, 0)}


async def test_holding_the_last_units_crosses_out_of_stock_and_release_brings_it_back(sessions) -> None:
    await receive(sessions, "A", 3)
    await reserve(sessions, "r1", ("A", 3))
    assert (await reserve(sessions, "r2", ("A", 1))).shortages == (Shortage("A", 1, 0),)
    await release(sessions, "r1")
    keys = await routing_keys(sessions)
    assert keys.count("inventory.out_of_stock") == 1
    assert keys.count("inventory.back_in_stock") == 1
    assert keys.index("inventory.out_of_stock") < keys.index("inventory.back_in_stock")


async def test_a_register_sale_is_never_refused_and_the_commit_still_sells(sessions) -> None:
    await receive(sessions, "A", 5)
    await reserve(sessions, "r1", ("A", 5))
    async with sessions.begin() as session:
        sold = await ledger.apply_movements(
            session, [MovementCommand("till-1", Position("t1", "s1", "A"), Kind.SALE, -2)], NOW
        )
    assert sold[0].outcome is ledger.Outcome.APPLIED
    assert (await reserve(sessions, "r2", ("A", 1))).shortages == (Shortage("A", 1, -2),)
    _, after = await commit(sessions, "r1")
    assert [(lv.on_hand, lv.reserved) for lv in after] == [(-2, 0)]
    assert "inventory.negative_stock_flagged" in await routing_keys(sessions)
    async with sessions() as session:
        states = (
            await session.execute(
                select(reservations_table.c.state, func.count()).group_by(reservations_table.c.state)
            )
        ).all()
    assert dict(states) == {"committed": 1}
