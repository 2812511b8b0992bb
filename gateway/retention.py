"""Retention: the gateway deletes what it stored once nothing can still need it.

What may go is decided per table in `posgate.gateway.retention_rules`; this module deletes it,
in an order that lets every row outlive whatever names it: commands, then the failures that
named them, then the raw payloads nothing names any more; de-duplication keys and audit rows
by age alone. A de-duplication key is kept for the retention but never less than
`DEDUPE_FLOOR`, longer than any vendor retries a delivery.

Deletes run in batches of at most `BATCH` rows, each its own short transaction, so a large
backlog never holds many locks for long. Commands, failures, raw payloads and audit rows are
walked by primary key from the oldest: each batch takes the next `BATCH` ids and deletes those
of them the rule allows. Ids follow time (near enough: processes' clocks differ a little), so
the walk ends at the first batch that reaches a row younger than the cutoff; rows kept by the
rules (open work) are stepped over. Several replicas may prune at once: deleting a row twice
is a no-op. Dialect-neutral SQLAlchemy Core: SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta

from sqlalchemy import Column, ColumnElement, Table, delete, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from posgate.gateway import retention_rules as rules
from posgate.gateway.audit import audit
from posgate.gateway.tables import commands, dedupe_keys, failures, raw_payloads
from posgate.runtime.periodic import Periodic

log = logging.getLogger(__name__)

# Rows one statement deletes at most.
BATCH = 5_000
# Square retries a delivery for up to 72 hours after the event, Shopify for 4 hours (8 tries).
DEDUPE_FLOOR = timedelta(days=7)

Stopping = Callable[[], bool]
Rule = Callable[[datetime], ColumnElement[bool]]


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """How long the gateway keeps its rows; None keeps them forever.

    Attributes:
        retention: Commands, failures, raw payloads (and de-duplication keys, see
            `dedupe_retention`).
        audit_retention: `gw_audit` rows.

    """

    retention: timedelta | None
    audit_retention: timedelta | None = None

    @classmethod
    def from_seconds(cls, retention_s: float, audit_retention_s: float) -> RetentionPolicy:
        """A policy from settings in seconds, where 0 means keep forever."""
        return cls(_period(retention_s), _period(audit_retention_s))

    @property
    def dedupe_retention(self) -> timedelta | None:
        """The retention, but never less than `DEDUPE_FLOOR`; None when rows are kept forever."""
        return None if self.retention is None else max(self.retention, DEDUPE_FLOOR)


@dataclass(slots=True)
class PruneReport:
    """How many rows of each table one prune deleted."""

    commands: int = 0
    failures: int = 0
    raw_payloads: int = 0
    dedupe_keys: int = 0
    audit: int = 0

    @property
    def total(self) -> int:
        """Rows deleted in all."""
        return sum(int(getattr(self, field.name)) for field in fields(self))


# Commands before the failures that name them, and both before the raw payloads they name.
_WALKS: tuple[tuple[str, Table, Column[datetime], Rule], ...] = (
    ("commands", commands, commands.c.created_at, rules.command_removable),
    ("failures", failures, failures.c.created_at, rules.failure_removable),
    ("raw_payloads", raw_payloads, raw_payloads.c.received_at, rules.raw_payload_removable),
)


async def prune(
    sessions: async_sessionmaker[AsyncSession],
    policy: RetentionPolicy,
    now: datetime,
    *,
    batch: int = BATCH,
    stopping: Stopping = lambda: False,
) -> PruneReport:
    """Delete every row `policy` and the rules allow at `now`, batch by batch.

    `stopping()` is asked between batches; once it answers True the prune returns what it did.
    """
    run = _Batches(sessions, batch, stopping)
    report = PruneReport()
    if policy.retention is not None:
        cutoff = now - policy.retention
        for name, table, age, rule in _WALKS:
            if stopping():
                return report
            setattr(report, name, await run.walk(table, age, rule(cutoff), cutoff))
    dedupe = policy.dedupe_retention
    if dedupe is not None and not stopping():
        report.dedupe_keys = await run.dedupe_keys(now - dedupe)
    if policy.audit_retention is not None and not stopping():
        cutoff = now - policy.audit_retention
        report.audit = await run.walk(audit, audit.c.occurred_at, audit.c.occurred_at < cutoff, cutoff)
    return report


@dataclass(frozen=True, slots=True)
class _Batches:
    """One prune's deletes: each batch its own transaction, `stopping()` asked between them."""

    sessions: async_sessionmaker[AsyncSession]
    batch: int
    stopping: Stopping

    async def walk(
        self, table: Table, age: Column[datetime], removable: ColumnElement[bool], cutoff: datetime
    ) -> int:
        """Delete `removable` rows of `table`, `batch` ids at a time from the oldest; how many."""
        deleted, after = 0, 0
        while True:
            async with self.sessions.begin() as session:
                ids = select(table.c.id, age).where(table.c.id > after).order_by(table.c.id).limit(self.batch)
                rows = (await session.execute(ids)).all()
                if not rows:
                    return deleted
                last = int(rows[-1][0])
                result = await session.execute(
                    delete(table).where(table.c.id > after, table.c.id <= last, removable)
                )
            deleted += _count(result)
            reached_young = any(row[1] >= cutoff for row in rows)
            if len(rows) < self.batch or reached_young or self.stopping():
                return deleted
            after = last

    async def dedupe_keys(self, cutoff: datetime) -> int:
        """Delete the keys claimed before `cutoff`, oldest first; how many."""
        key = tuple_(dedupe_keys.c.provider, dedupe_keys.c.dedupe_key)
        oldest = (
            select(dedupe_keys.c.provider, dedupe_keys.c.dedupe_key)
            .where(dedupe_keys.c.created_at < cutoff)
            .order_by(dedupe_keys.c.created_at)
            .limit(self.batch)
        )
        deleted = 0
        while True:
            async with self.sessions.begin() as session:
                result = await session.execute(
                    delete(dedupe_keys).where(dedupe_keys.c.created_at < cutoff, key.in_(oldest))
                )
            removed = _count(result)
            deleted += removed
            if removed < self.batch or self.stopping():
                return deleted


def _count(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def _period(seconds: float) -> timedelta | None:
    return timedelta(seconds=seconds) if seconds > 0 else None


class GatewayPruner(Periodic):
    """Prunes the gateway's tables by `policy` every `interval_s` seconds until stopped."""

    name = "gateway-pruner"

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        policy: RetentionPolicy,
        interval_s: float = 600.0,
        *,
        batch: int = BATCH,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """Create a pruner (see `prune`); `start()` runs it."""
        super().__init__(interval_s)
        self._sessions = sessions
        self._policy = policy
        self._batch = batch
        self._clock = clock

    async def sweep(self) -> None:
        """Prune once; stops between batches when the pruner is stopped."""
        report = await prune(
            self._sessions, self._policy, self._clock(), batch=self._batch, stopping=lambda: self.stopping
        )
        if report.total:
            log.info(
                "pruned gateway rows: %d commands, %d failures, %d raw payloads, %d dedupe keys, %d audit",
                report.commands,
                report.failures,
                report.raw_payloads,
                report.dedupe_keys,
                report.audit,
            )
