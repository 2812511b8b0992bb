"""Reading reservations and moving them out of `active`, inside the caller's transaction."""

from __future__ import annotations

from sqlalchemy import RowMapping, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from posgate.errors import Aborted, NotFound
from posgate.services.inventory.reservation_rules import ReservationView, State
from posgate.services.inventory.tables import reservation_lines, reservations

# A state read can, on PostgreSQL, see a reservation committed just after the transition
# missed it; trying again a few times settles it.
ATTEMPTS = 3


async def get(session: AsyncSession, tenant_id: str, reservation_id: str) -> ReservationView | None:
    """The reservation with its lines, or None."""
    row = (
        (
            await session.execute(
                select(reservations).where(
                    reservations.c.tenant_id == tenant_id, reservations.c.reservation_id == reservation_id
                )
            )
        )
        .mappings()
        .one_or_none()
    )
    return None if row is None else await view_of(session, row)


async def view_of(session: AsyncSession, row: RowMapping) -> ReservationView:
    """The reservation of `row` with its lines."""
    lines = await session.execute(
        select(reservation_lines.c.sku, reservation_lines.c.quantity)
        .where(
            reservation_lines.c.tenant_id == row["tenant_id"],
            reservation_lines.c.reservation_id == row["reservation_id"],
        )
        .order_by(reservation_lines.c.sku)
    )
    return ReservationView(
        row["tenant_id"],
        row["reservation_id"],
        row["store_id"],
        row["order_id"],
        tuple((sku, int(quantity)) for sku, quantity in lines),
        State(row["state"]),
        row["created_at"],
        row["expires_at"],
    )


async def transition(
    session: AsyncSession, tenant_id: str, reservation_id: str, target: State
) -> tuple[ReservationView, bool]:
    """Move active → `target` atomically; return the view and whether this call moved it.

    The `state = 'active'` condition makes concurrent release, commit and expiry exclusive:
    on PostgreSQL the loser waits for the winner's row lock, then finds the state changed.
    """
    pk = (reservations.c.tenant_id == tenant_id, reservations.c.reservation_id == reservation_id)
    for _ in range(ATTEMPTS):
        statement = (
            update(reservations)
            .where(*pk, reservations.c.state == State.ACTIVE.value)
            .values(state=target.value)
            .returning(*reservations.c)
        )
        row = (await session.execute(statement)).mappings().one_or_none()
        if row is not None:
            return await view_of(session, row), True
        current = await get(session, tenant_id, reservation_id)
        if current is None:
            raise NotFound("no such reservation", reason="RESERVATION_NOT_FOUND")
        if current.state is not State.ACTIVE:
            return current, False
    raise Aborted("the reservation kept changing; retry", reason="RESERVATION_CONTENDED")
