"""Pruning: the change log keeps what streams can still resume from, not every change for ever.

`inv_change_blocks` gains a row per store and committed transaction. A stream resumes from it
only within `MAX_REPLAY` changes of its store's head; anything older is served as a snapshot
instead (`stream_log`), so older rows are dead weight. Per store, a row is deleted once it is
both older than the retention and all its changes are more than `MAX_REPLAY` behind the head:
a quiet store keeps its recent history however old, and a busy one keeps its replay window.
Deletes walk the primary key (tenant, store, last sequence), a bounded range per store and
transaction, so they never scan the log or hold many locks. Several replicas may prune at
once: deleting a row twice is a no-op.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from posgate.runtime.periodic import Periodic
from posgate.services.inventory.stream_log import MAX_REPLAY
from posgate.services.inventory.tables import change_blocks, store_sequences

log = logging.getLogger(__name__)

# Rows (each a store's transaction) one store's delete may remove per transaction.
_CHUNK = 1_000


async def prune_changes(
    sessions: async_sessionmaker[AsyncSession], now: datetime, retention: timedelta, *, keep: int = MAX_REPLAY
) -> int:
    """Delete every change-log row older than `retention` whose changes are all more than `keep` behind.

    Returns:
        How many rows were deleted.

    """
    async with sessions() as session:
        heads = (await session.execute(select(store_sequences))).all()
    cutoff = now - retention
    deleted = 0
    for head in heads:
        upto = int(head.last_sequence) - keep
        while upto > 0:
            removed = await _prune_store(sessions, head.tenant_id, head.store_id, upto, cutoff)
            deleted += removed
            if removed < _CHUNK:
                break
    return deleted


async def _prune_store(
    sessions: async_sessionmaker[AsyncSession], tenant_id: str, store_id: str, upto: int, cutoff: datetime
) -> int:
    async with sessions.begin() as session:
        blocks = change_blocks.c
        oldest = (
            select(blocks.last_sequence)
            .where(blocks.tenant_id == tenant_id, blocks.store_id == store_id)
            .where(blocks.last_sequence <= upto, blocks.committed_at < cutoff)
            .order_by(blocks.last_sequence)
            .limit(_CHUNK)
        )
        result = await session.execute(
            delete(change_blocks)
            .where(blocks.tenant_id == tenant_id, blocks.store_id == store_id)
            .where(blocks.last_sequence.in_(oldest.scalar_subquery()))
        )
    return int(getattr(result, "rowcount", 0) or 0)


class ChangeLogPruner(Periodic):
    """Prunes the change log every `interval_s` seconds until stopped."""

    name = "change-log-pruner"

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        retention: timedelta,
        interval_s: float = 600.0,
        *,
        keep: int = MAX_REPLAY,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """Create a pruner (see `prune_changes` for `retention` and `keep`); `start()` runs it."""
        super().__init__(interval_s)
        self._sessions = sessions
        self._retention = retention
        self._keep = keep
        self._clock = clock

    async def sweep(self) -> None:
        """Prune once."""
        deleted = await prune_changes(self._sessions, self._clock(), self._retention, keep=self._keep)
        if deleted:
            log.info("pruned %d change-log rows older than %s", deleted, self._retention)
