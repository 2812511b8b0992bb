"""Group commit: concurrent ApplyMovements calls share one transaction.

A durable commit costs a disk flush; a service that flushes once per single-movement call
is bounded by the disk, not by its CPU. Calls that arrive while a batch is being committed
are queued and committed together in the next one; each caller still gets its own results,
and nothing is acknowledged before the transaction holding it has committed.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from posgate.bus.held import HeldConnection
from posgate.services.inventory.domain import MovementCommand
from posgate.services.inventory.journal import Change, recorded_changes
from posgate.services.inventory.ledger import Applied

_logger = logging.getLogger("posgate.inventory.batching")

ApplyFn = Callable[[AsyncSession, Sequence[MovementCommand], datetime], Awaitable[list[Applied]]]


@dataclass
class _Submission:
    commands: Sequence[MovementCommand]
    done: asyncio.Future[list[Applied]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class CommitLane:
    """Queues movement submissions and commits them in shared transactions, one at a time."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        apply: ApplyFn,
        *,
        max_batch: int = 2000,
        on_commit: Callable[[Sequence[Change]], None] = lambda _changes: None,
        attempts: int = 3,
    ) -> None:
        """Commit at most `max_batch` movements per transaction; `on_commit` gets each one's changes."""
        self._sessions = sessions
        self._apply = apply
        self._max_batch = max_batch
        self._on_commit = on_commit
        self._attempts = attempts
        self._queue: asyncio.Queue[_Submission] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._connection = HeldConnection(sessions)

    def start(self) -> None:
        """Start the committing task."""
        if self._worker is None:
            self._worker = asyncio.create_task(self._run(), name="posgate-inventory-commit-lane")

    async def stop(self) -> None:
        """Commit what is queued, then stop."""
        if self._worker is None:
            return
        await self._queue.join()
        self._worker.cancel()
        await asyncio.gather(self._worker, return_exceptions=True)
        self._worker = None
        await self._connection.close()

    async def submit(self, commands: Sequence[MovementCommand]) -> list[Applied]:
        """Apply `commands` durably (in a shared transaction); return their results once committed."""
        submission = _Submission(commands)
        self._queue.put_nowait(submission)
        return await submission.done

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            # A few turns of the loop let calls whose requests are already arriving join this
            # batch: microseconds here, and one commit fewer for them.
            for _ in range(3):
                await asyncio.sleep(0)
            size = len(batch[0].commands)
            while not self._queue.empty() and size < self._max_batch:
                batch.append(self._queue.get_nowait())
                size += len(batch[-1].commands)
            try:
                await self._commit_batch(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _commit_batch(self, batch: list[_Submission]) -> None:
        try:
            results, changes = await self._commit([c for s in batch for c in s.commands])
        except Exception as error:
            if len(batch) == 1:
                _resolve_error(batch[0], error)
                return
            # One submission must not fail the others: retry them one by one.
            _logger.warning("group commit of %d submissions failed (%s); retrying each", len(batch), error)
            for submission in batch:
                await self._commit_batch([submission])
            return
        start = 0
        for submission in batch:
            end = start + len(submission.commands)
            if not submission.done.done():
                submission.done.set_result(results[start:end])
            start = end
        # After the answers: the callers' replies are queued before the stream wake-ups.
        self._on_commit(changes)

    async def _commit(self, commands: list[MovementCommand]) -> tuple[list[Applied], list[Change]]:
        for attempt in range(1, self._attempts + 1):
            try:
                async with self._connection.begin() as session:
                    results = await self._apply(session, commands, datetime.now(UTC))
                return results, recorded_changes(session)
            except DBAPIError as error:
                # Deadlocks and serialisation failures are transient: the whole batch is retried,
                # as it is when the kept connection turns out dead (the retry takes a fresh one).
                if attempt == self._attempts or not (_transient(error) or error.connection_invalidated):
                    raise
                await asyncio.sleep(0.01 * attempt)
        raise AssertionError("unreachable")


def _transient(error: DBAPIError) -> bool:
    code = getattr(error.orig, "sqlstate", None) or getattr(error.orig, "pgcode", None)
    return code in {"40001", "40P01"} or "database is locked" in str(error.orig)


def _resolve_error(submission: _Submission, error: Exception) -> None:
    if not submission.done.done():
        submission.done.set_exception(error)


SPLIT_FROM = 64
"""Movements from which a call is split over the lanes; smaller calls go whole to the first."""


class GroupCommitter:
    """Commits movements in shared transactions on `lanes` lanes.

    One lane commits one transaction at a time, so its database round trips and disk flushes
    are waits in which its process could prepare the next. Lanes overlap them. A call of at
    least `split_from` movements is split by a stable hash of each movement's store, so each
    store's share of large calls always goes to the same lane and the lanes rarely wait for
    each other's row locks; the call is answered once every part has committed. Smaller calls
    go whole to the first lane: spread over lanes, the many small calls of a busy register
    fleet would make more, smaller transactions (one disk flush each) for the same work.
    Where a small call and another lane's part touch one store, PostgreSQL's row locks order
    them (`journal`); the stream hub orders changes that reach it out of order.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        apply: ApplyFn,
        *,
        max_batch: int = 2000,
        on_commit: Callable[[Sequence[Change]], None] = lambda _changes: None,
        attempts: int = 3,
        lanes: int = 1,
        split_from: int = SPLIT_FROM,
    ) -> None:
        """`lanes` lanes, each committing at most `max_batch` movements per transaction."""
        self._split_from = split_from
        self._lanes = [
            CommitLane(sessions, apply, max_batch=max_batch, on_commit=on_commit, attempts=attempts)
            for _ in range(max(1, lanes))
        ]

    def start(self) -> None:
        """Start every lane."""
        for lane in self._lanes:
            lane.start()

    async def stop(self) -> None:
        """Commit what is queued, then stop."""
        await asyncio.gather(*(lane.stop() for lane in self._lanes))

    async def submit(self, commands: Sequence[MovementCommand]) -> list[Applied]:
        """Apply `commands` durably; return their results, in order, once every part committed."""
        if len(self._lanes) == 1 or len(commands) < self._split_from:
            return await self._lanes[0].submit(commands)
        parts: dict[int, list[int]] = {}
        for index, command in enumerate(commands):
            lane = zlib.crc32(command.position.store_id.encode()) % len(self._lanes)
            parts.setdefault(lane, []).append(index)
        if len(parts) == 1:
            return await self._lanes[next(iter(parts))].submit(commands)
        answers = await asyncio.gather(
            *(self._lanes[lane].submit([commands[i] for i in indexes]) for lane, indexes in parts.items())
        )
        results: list[Applied | None] = [None] * len(commands)
        for indexes, answer in zip(parts.values(), answers, strict=True):
            for index, applied in zip(indexes, answer, strict=True):
                results[index] = applied
        return [applied for applied in results if applied is not None]
