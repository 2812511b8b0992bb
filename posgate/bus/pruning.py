"""Retention of the bus's own tables: published outbox rows and the consumers' inbox rows.

The relay marks an outbox row published and leaves it; a consumer writes an inbox row for every
event it applied, its de-duplication record. Until this module, neither table lost a row: at a
few hundred commits a second the outbox gains millions of rows a day, each with its body.

After a while neither row serves anyone. A published row is only a record of what left. An
inbox row stops a redelivery of the same event from being applied twice, and RabbitMQ redelivers
an unacknowledged message when its consumer's channel closes, within the consumer's own outage;
a dead-lettered event was never applied, so replaying it needs no row. The defaults keep
published rows a day and inbox rows a week (`Settings.outbox_retention_s`, `inbox_retention_s`);
0 keeps them for ever.

Rows go oldest first, `CHUNK` per transaction, so a first sweep of a large table holds few
locks at a time. Every process that runs a relay sweeps, and several may sweep at once:
deleting a row twice is a no-op. An unpublished outbox row is never deleted, however old.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Delete, Select, delete, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from posgate.db.tables import inbox, outbox
from posgate.runtime.periodic import Periodic

log = logging.getLogger(__name__)

CHUNK = 5_000
"""Rows one transaction deletes."""


Stopping = Callable[[], bool]
"""Asked between chunks: True ends the prune early (the process is shutting down)."""


async def prune_outbox(
    sessions: async_sessionmaker[AsyncSession], cutoff: datetime, stopping: Stopping = lambda: False
) -> int:
    """Delete the outbox rows published before `cutoff`; how many were deleted."""
    # `published_at < cutoff` leaves unpublished rows (NULL) out, and walks the
    # (published_at, id) index from its oldest end.
    oldest = (
        select(outbox.c.id)
        .where(outbox.c.published_at < cutoff)
        .order_by(outbox.c.published_at, outbox.c.id)
        .limit(CHUNK)
    )
    statement = delete(outbox).where(outbox.c.id.in_(oldest.scalar_subquery()))
    return await _in_chunks(sessions, oldest, statement, stopping)


async def prune_inbox(
    sessions: async_sessionmaker[AsyncSession], cutoff: datetime, stopping: Stopping = lambda: False
) -> int:
    """Delete the inbox rows received before `cutoff`; how many were deleted.

    `received_at` has no index (one would cost every consumed event an index insert), so each
    chunk, and a sweep that finds nothing, reads the table: once every prune interval.
    """
    oldest: Select[tuple[str, str]] = (
        select(inbox.c.consumer, inbox.c.message_id).where(inbox.c.received_at < cutoff).limit(CHUNK)
    )
    statement = delete(inbox).where(tuple_(inbox.c.consumer, inbox.c.message_id).in_(oldest))
    return await _in_chunks(sessions, oldest, statement, stopping)


async def _in_chunks(
    sessions: async_sessionmaker[AsyncSession], oldest: Select[Any], statement: Delete, stopping: Stopping
) -> int:
    """Run `statement` (deleting the rows `oldest` selects) until it deletes fewer than `CHUNK`.

    `stopping()` is asked between chunks, so a first sweep of a large table does not hold up a
    shutdown; the next sweep goes on where it stopped.

    A sweep with nothing to delete only reads: on SQLite a DELETE takes the database's write
    lock even when it matches no row, which would make a writer elsewhere wait.
    """
    deleted = 0
    while True:
        async with sessions.begin() as session:
            if (await session.execute(oldest.limit(1))).first() is None:
                return deleted
            result = await session.execute(statement)
        removed = int(getattr(result, "rowcount", 0) or 0)
        deleted += removed
        if removed < CHUNK or stopping():
            return deleted


class BusPruner(Periodic):
    """Deletes what the outbox and inbox retentions allow, every `interval_s` seconds until stopped."""

    name = "bus-pruner"

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        outbox_retention: timedelta | None,
        inbox_retention: timedelta | None,
        interval_s: float = 600.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """A retention of None keeps that table's rows for ever; `start()` runs the sweeps."""
        super().__init__(interval_s)
        self._sessions = sessions
        self._outbox_retention = outbox_retention
        self._inbox_retention = inbox_retention
        self._clock = clock

    @classmethod
    def from_seconds(
        cls,
        sessions: async_sessionmaker[AsyncSession],
        outbox_s: float,
        inbox_s: float,
        interval_s: float,
    ) -> BusPruner:
        """A pruner from the settings' seconds, where 0 means for ever."""
        return cls(
            sessions,
            outbox_retention=timedelta(seconds=outbox_s) if outbox_s else None,
            inbox_retention=timedelta(seconds=inbox_s) if inbox_s else None,
            interval_s=interval_s,
        )

    def _stopping_now(self) -> bool:
        return self.stopping

    async def sweep(self) -> None:
        """Prune both tables once (cut short by `stop()`)."""
        now = self._clock()
        if self._outbox_retention is not None:
            published = await prune_outbox(self._sessions, now - self._outbox_retention, self._stopping_now)
            if published:
                log.info("pruned %d published outbox rows older than %s", published, self._outbox_retention)
        if self._inbox_retention is not None and not self.stopping:
            received = await prune_inbox(self._sessions, now - self._inbox_retention, self._stopping_now)
            if received:
                log.info("pruned %d inbox rows older than %s", received, self._inbox_retention)
