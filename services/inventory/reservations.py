"""Reservations: hold stock for an order at one store, then release it or sell it.

Every function works inside the caller's transaction and never commits. Lock order, as in
`journal`: the reservation row (claimed by insert or by a state transition), then the store
sequence row (`journal.allocate`), then stock rows sorted by SKU. Stock is held with a
conditional `UPDATE ... WHERE on_hand - reserved >= q`, so `available` never goes below zero
through a reservation whatever runs concurrently; register sales (movements) may still drive
it negative, since a sale that happened is never refused.

Call at most one of these per transaction: the store lock one takes is held until commit,
and a second call claiming a key that another transaction holds could then deadlock.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from posgate.bus.outbox import OutgoingEvent, add_events
from posgate.contracts import events
from posgate.errors import FailedPrecondition
from posgate.services.inventory import convert, journal
from posgate.services.inventory.domain import Kind, Level, Position
from posgate.services.inventory.holds import Step, allocate, record_steps, shift
from posgate.services.inventory.levels import read_levels
from posgate.services.inventory.reservation_rows import get, transition
from posgate.services.inventory.reservation_rules import (
    DEFAULT_TTL,
    MAX_HOLD,
    MAX_LINES,
    Lines,
    ReservationView,
    ReserveCommand,
    ReserveResult,
    Shortage,
    State,
    commit_key,
    validate_reserve,
)
from posgate.services.inventory.sql import upsert
from posgate.services.inventory.tables import movements, reservation_lines, reservations


class _Short(Exception):
    """Raised inside the savepoint so that everything the reserve did is rolled back."""

    def __init__(self, shortages: tuple[Shortage, ...]) -> None:
        super().__init__(f"{len(shortages)} lines short")
        self.shortages = shortages


async def reserve(session: AsyncSession, command: ReserveCommand, now: datetime) -> ReserveResult:
    """Hold every line or none; a known `reservation_id` returns that reservation as it is.

    Works in a SAVEPOINT: when a line is short, the claim, the sequence allocation and the
    holds are rolled back (so store sequences stay gap-free) and the caller's transaction
    stays usable; committing it then commits nothing of this call.

    Args:
        session: Inside the caller's transaction (the caller commits).
        command: A validated command.
        now: Commit time.

    Returns:
        The reservation, or no reservation and one shortage per short line.

    """
    lines = tuple(sorted(command.lines))
    try:
        async with session.begin_nested():
            claimed = await _claim(session, command, now)
            if claimed:
                await _hold(session, command, lines, now)
    except _Short as short:
        return ReserveResult(None, short.shortages)
    if claimed:
        # Built, not read back: the store lock is held until commit, so no extra round trips.
        c = command
        return ReserveResult(
            ReservationView(
                c.tenant_id, c.reservation_id, c.store_id, c.order_id, lines, State.ACTIVE, now, c.expires_at
            )
        )
    # The reservation whose key blocked the claim is committed, so visible now.
    view = await get(session, command.tenant_id, command.reservation_id)
    if view is None:
        raise RuntimeError("reservation claim conflicted but no reservation is visible")
    return ReserveResult(view)


async def _claim(session: AsyncSession, command: ReserveCommand, now: datetime) -> bool:
    """Insert the reservation row unless its key exists; on PostgreSQL waits for a concurrent holder."""
    statement = (
        upsert(session, reservations)
        .values(
            tenant_id=command.tenant_id,
            reservation_id=command.reservation_id,
            store_id=command.store_id,
            order_id=command.order_id,
            state=State.ACTIVE.value,
            created_at=now,
            expires_at=command.expires_at,
        )
        .on_conflict_do_nothing(index_elements=["tenant_id", "reservation_id"])
        .returning(reservations.c.reservation_id)
    )
    return (await session.execute(statement)).first() is not None


async def _hold(session: AsyncSession, command: ReserveCommand, lines: Lines, now: datetime) -> None:
    """Raise `available`-guarded holds on each line; raise `_Short` unless every line held."""
    # Refuse what committed stock already cannot cover without queueing on the store lock
    # (when a SKU runs out, most callers are refused); only the guarded updates grant holds.
    short = await _shortages(session, command, lines)
    if short:
        raise _Short(short)
    first = await allocate(session, command.tenant_id, command.store_id, len(lines))
    held: list[Step] = []
    refused: list[tuple[str, int]] = []
    for offset, (sku, quantity) in enumerate(lines):
        position = Position(command.tenant_id, command.store_id, sku)
        row = await shift(session, position, reserved=quantity, sequence=first + offset, now=now, guard=True)
        if row is None:
            refused.append((sku, quantity))
        else:
            held.append((row, 0, Kind.RESERVATION, command.reservation_id))
    if refused:
        # Read under the store lock: these are the levels that refused the lines.
        raise _Short(await _shortages(session, command, refused))
    await session.execute(
        insert(reservation_lines),
        [
            {
                "tenant_id": command.tenant_id,
                "reservation_id": command.reservation_id,
                "sku": s,
                "quantity": q,
            }
            for s, q in lines
        ],
    )
    await record_steps(session, held)


async def _shortages(
    session: AsyncSession, command: ReserveCommand, lines: Sequence[tuple[str, int]]
) -> tuple[Shortage, ...]:
    """The lines whose position is missing or has less available than asked, as read now."""
    positions = {sku: Position(command.tenant_id, command.store_id, sku) for sku, _ in lines}
    found = await read_levels(session, positions.values())
    available = {sku: found[p].available if p in found else 0 for sku, p in positions.items()}
    return tuple(Shortage(sku, q, available[sku]) for sku, q in lines if available[sku] < q)


async def release(
    session: AsyncSession, tenant_id: str, reservation_id: str, now: datetime, *, expired: bool = False
) -> ReservationView:
    """Free an active reservation's stock; a released or expired one is returned unchanged.

    Args:
        session: Inside the caller's transaction (the caller commits).
        tenant_id: The reservation's tenant.
        reservation_id: The reservation's key.
        now: Commit time.
        expired: Mark it expired (not released) and announce `inventory.reservation_expired`.

    Raises:
        NotFound: `RESERVATION_NOT_FOUND`.
        FailedPrecondition: `RESERVATION_COMMITTED`: it was sold already.

    """
    target = State.EXPIRED if expired else State.RELEASED
    view, moved = await transition(session, tenant_id, reservation_id, target)
    if not moved:
        if view.state is State.COMMITTED:
            raise FailedPrecondition("the reservation was committed", reason="RESERVATION_COMMITTED")
        return view
    await _settle(session, view, now, sale=False)
    if expired:
        await add_events(session, [reservation_expired_event(view, now)])
    return view


async def commit(
    session: AsyncSession, tenant_id: str, reservation_id: str, now: datetime
) -> tuple[ReservationView, list[Level]]:
    """Turn an active reservation into a sale: one ledger row per line, on-hand and reserved drop.

    Committing a committed reservation returns it with the current levels. An overdue
    reservation the sweeper has not expired yet still holds its stock and can be committed.

    Args:
        session: Inside the caller's transaction (the caller commits).
        tenant_id: The reservation's tenant.
        reservation_id: The reservation's key.
        now: Commit time.

    Returns:
        The reservation and the levels of its positions (after the sale), sorted by SKU.

    Raises:
        NotFound: `RESERVATION_NOT_FOUND`.
        FailedPrecondition: `RESERVATION_NOT_ACTIVE`: it was released or expired.

    """
    view, moved = await transition(session, tenant_id, reservation_id, State.COMMITTED)
    positions = [Position(tenant_id, view.store_id, sku) for sku, _ in view.lines]
    if not moved:
        if view.state is not State.COMMITTED:
            raise FailedPrecondition(f"the reservation is {view.state}", reason="RESERVATION_NOT_ACTIVE")
        current = await read_levels(session, positions)
        return view, [current[p] for p in positions if p in current]
    # Ledger first (the idempotency claims of the lock order); the transition made them unique.
    await session.execute(
        insert(movements),
        [
            {
                "tenant_id": tenant_id,
                "idempotency_key": commit_key(reservation_id, sku),
                "store_id": view.store_id,
                "sku": sku,
                "kind": Kind.SALE.value,
                "delta": -quantity,
                "reference": view.order_id,
                "provider": "",
                "occurred_at": now,
                "recorded_at": now,
            }
            for sku, quantity in view.lines
        ],
    )
    return view, await _settle(session, view, now, sale=True)


async def _settle(session: AsyncSession, view: ReservationView, now: datetime, *, sale: bool) -> list[Level]:
    """Drop the held quantities (and on-hand too for a sale); record one change per line."""
    first = await allocate(session, view.tenant_id, view.store_id, len(view.lines))
    steps: list[Step] = []
    for offset, (sku, quantity) in enumerate(view.lines):
        position = Position(view.tenant_id, view.store_id, sku)
        delta = -quantity if sale else 0
        row = await shift(
            session, position, reserved=-quantity, on_hand=delta, sequence=first + offset, now=now
        )
        if row is None:
            raise RuntimeError(f"stock row of held {position} is missing")
        key = commit_key(view.reservation_id, sku) if sale else view.reservation_id
        steps.append((row, delta, Kind.SALE if sale else Kind.RESERVATION, key))
    return await record_steps(session, steps)


def reservation_expired_event(view: ReservationView, now: datetime) -> OutgoingEvent:
    """The `inventory.reservation_expired` outbox event of an expired reservation."""
    payload = events.pb.ReservationExpired(reservation=convert.reservation_to_pb(view))
    return journal.outgoing(payload, view.tenant_id, view.store_id, now)


__all__ = [
    "DEFAULT_TTL",
    "MAX_HOLD",
    "MAX_LINES",
    "ReservationView",
    "ReserveCommand",
    "ReserveResult",
    "Shortage",
    "State",
    "commit",
    "commit_key",
    "get",
    "release",
    "reservation_expired_event",
    "reserve",
    "validate_reserve",
]
