"""The outbox relay: publishes committed outbox rows in id order and marks them sent."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Update, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from posgate.bus.held import HeldConnection
from posgate.bus.ports import EventSink, OutgoingEvent
from posgate.bus.retry import Backoff, describe_error
from posgate.db import raw
from posgate.db.raw import PositionalSql
from posgate.db.tables import outbox

log = logging.getLogger(__name__)


class OutboxRelay:
    """Publishes unpublished outbox rows through an `EventSink`, oldest first."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        sink: EventSink,
        *,
        batch_size: int = 256,
        poll_interval: float = 0.2,
        backoff: Backoff | None = None,
        round_spacing: float = 0.005,
    ) -> None:
        """Create a relay; call `run()` in a task or `publish_pending()` for one round.

        A woken round starts at once when the last one ended `round_spacing` seconds ago or
        more, else when that much has passed (a full batch is followed at once): under a stream
        of commits each round takes what several of them wrote (one transaction and one burst of
        confirms for all), and an event after a quiet spell still leaves at once.
        """
        self._sessions = sessions
        self._sink = sink
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._round_spacing = round_spacing
        self._backoff = backoff or Backoff()
        self._stopping = asyncio.Event()
        # While `run()` runs, its rounds share one connection (see `posgate.bus.held`).
        self._connection = HeldConnection(sessions)
        self._running = False
        # Set by `wake()` and `stop()`; the idle wait returns early on it, failure backoff does not.
        self._woken = asyncio.Event()

    async def publish_pending(self) -> int:
        """Publish one batch of unpublished rows; return how many were published.

        Raises:
            Exception: From the sink or the database; no row is marked in that case.

        """
        bind = self._sessions.kw.get("bind")
        if bind is not None and bind.dialect.name == "sqlite":
            async with self._sessions() as session:
                return await self._publish_unlocked(session)
        async with self._connection.begin() if self._running else self._sessions.begin() as session:
            # One statement claims and marks the rows; they stay locked until the commit, and
            # a failed publish raises out of the block, which rolls the marks back.
            rows = await raw.fetch(
                session, _CLAIM_AND_MARK, {"now": datetime.now(UTC), "batch": self._batch_size}
            )
            if rows:
                await self._sink.publish([_event(row) for row in sorted(rows, key=_row_id)])
        return len(rows)

    async def _publish_unlocked(self, session: AsyncSession) -> int:
        # SQLite has no row locks (one relay per file), and a read transaction kept open while
        # in-process subscribers commit could not be upgraded to a write later.
        query = select(outbox).where(outbox.c.published_at.is_(None)).order_by(outbox.c.id)
        rows = (await session.execute(query.limit(self._batch_size))).all()
        if not rows:
            return 0
        await session.commit()
        await self._sink.publish([_event(row._mapping) for row in rows])
        await session.execute(
            update(outbox)
            .where(outbox.c.id.in_([row.id for row in rows]))
            .values(published_at=datetime.now(UTC))
        )
        await session.commit()
        return len(rows)

    async def run(self) -> None:
        """Publish until `stop()`; back off with jitter while the sink or database fails."""
        self._running = True
        try:
            await self._rounds()
        finally:
            self._running = False
            await self._connection.close()

    async def _rounds(self) -> None:
        failures = 0
        loop = asyncio.get_running_loop()
        while not self._stopping.is_set():
            # Cleared before the round, so a commit made while the round runs still wakes the next one.
            self._woken.clear()
            try:
                published = await self.publish_pending()
            except Exception as error:
                failures += 1
                delay = self._backoff.delay(failures)
                log.warning(
                    "outbox relay failed (attempt %d), retrying in %.2fs: %s",
                    failures,
                    delay,
                    describe_error(error),
                )
                await self._sleep(delay)
                continue
            ended = loop.time()
            if failures:
                log.info("outbox relay recovered after %d failed attempts", failures)
            failures = 0
            if published < self._batch_size:
                await _wait(self._woken, self._poll_interval)
                spacing = ended + self._round_spacing - loop.time()
                if spacing > 0:
                    await self._sleep(spacing)

    def wake(self) -> None:
        """Start the next round now instead of at the end of the idle poll interval.

        Cheap and synchronous: call it from the event loop right after committing outbox rows.
        Wakes coalesce (many before the next round cause one round). It does not shorten the
        backoff after a failure, so producers can not turn an outage into a retry storm.
        """
        self._woken.set()

    def stop(self) -> None:
        """Ask `run()` to return after the round in progress."""
        self._stopping.set()
        self._woken.set()

    async def _sleep(self, seconds: float) -> None:
        await _wait(self._stopping, seconds)


async def _wait(event: asyncio.Event, seconds: float) -> None:
    """Wait until `event` is set or `seconds` have passed."""
    try:
        await asyncio.wait_for(event.wait(), timeout=seconds)
    except TimeoutError:
        return


def _claim_and_mark() -> Update:
    # Several relays may run: each takes rows no other relay holds, and the lock lasts until
    # the marks commit, so no row is published twice by two relays.
    unpublished = (
        select(outbox.c.id)
        .where(outbox.c.published_at.is_(None))
        .order_by(outbox.c.id)
        .limit(bindparam("batch"))
        .with_for_update(skip_locked=True)
    )
    return (
        update(outbox)
        .where(outbox.c.id.in_(unpublished.scalar_subquery()))
        .values(published_at=bindparam("now"))
        .returning(*outbox.c)
    )


_CLAIM_AND_MARK = PositionalSql.of(_claim_and_mark())


def _row_id(row: Mapping[Any, Any]) -> int:
    return int(row["id"])


def _event(mapping: Mapping[Any, Any]) -> OutgoingEvent:
    return OutgoingEvent(
        event_id=mapping["event_id"],
        event_type=mapping["event_type"],
        routing_key=mapping["routing_key"],
        body=bytes(mapping["body"]),
        partition_key=mapping["partition_key"],
        headers={str(key): str(value) for key, value in (mapping["headers"] or {}).items()},
        created_at=mapping["created_at"],
    )
