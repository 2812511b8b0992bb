"""Expiry: active reservations past their expiry free their stock by themselves.

Any number of replicas may sweep at once: each reservation is taken with
`FOR UPDATE SKIP LOCKED` on PostgreSQL (SQLite has one writer at a time anyway), and the
release's `active → expired` transition makes a second attempt a no-op.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from posgate.runtime.periodic import Periodic
from posgate.services.inventory import reservations
from posgate.services.inventory.sql import is_postgres
from posgate.services.inventory.tables import reservations as reservations_table

log = logging.getLogger(__name__)


async def expire_due(sessions: async_sessionmaker[AsyncSession], now: datetime, limit: int = 100) -> int:
    """Release (as expired) up to `limit` active reservations with `expires_at <= now`.

    Each reservation is expired in its own transaction, so one that fails is logged and
    skipped without holding back the rest.

    Returns:
        How many reservations this call expired.

    """
    # Listed in a transaction of its own and closed before the releases: on SQLite every
    # transaction holds the write lock, so keeping this one open would block them.
    async with sessions() as session:
        due = (
            await session.execute(
                select(reservations_table.c.tenant_id, reservations_table.c.reservation_id)
                .where(
                    reservations_table.c.state == reservations.State.ACTIVE.value,
                    reservations_table.c.expires_at <= now,
                )
                .order_by(reservations_table.c.expires_at)
                .limit(limit)
            )
        ).all()
    expired = 0
    for tenant_id, reservation_id in due:
        try:
            if await _expire_one(sessions, tenant_id, reservation_id, now):
                expired += 1
        except Exception:
            log.exception("could not expire reservation %s of tenant %s", reservation_id, tenant_id)
    return expired


async def _expire_one(
    sessions: async_sessionmaker[AsyncSession], tenant_id: str, reservation_id: str, now: datetime
) -> bool:
    """Expire one reservation unless another sweeper holds it or it is no longer due."""
    async with sessions.begin() as session:
        query = select(reservations_table.c.reservation_id).where(
            reservations_table.c.tenant_id == tenant_id,
            reservations_table.c.reservation_id == reservation_id,
            reservations_table.c.state == reservations.State.ACTIVE.value,
            reservations_table.c.expires_at <= now,
        )
        if is_postgres(session):
            # Taking the reservation row first keeps the lock order of `reservations`.
            query = query.with_for_update(skip_locked=True)
        if (await session.execute(query)).first() is None:
            return False
        await reservations.release(session, tenant_id, reservation_id, now, expired=True)
    return True


class ReservationSweeper(Periodic):
    """Expires due reservations every `interval_s` seconds until stopped."""

    name = "reservation-sweeper"

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        interval_s: float = 5.0,
        *,
        batch_size: int = 100,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """Create a sweeper; `start()` runs it in a task, or await `run()` yourself."""
        super().__init__(interval_s)
        self._sessions = sessions
        self._batch_size = batch_size
        self._clock = clock

    async def sweep(self) -> None:
        """Expire what is due; a full batch suggests a backlog, so sweep again at once."""
        while (
            await expire_due(self._sessions, self._clock(), self._batch_size) >= self._batch_size
            and not self.stopping
        ):
            pass
