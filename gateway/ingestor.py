"""Group commit for webhook deliveries: concurrent deliveries share one transaction.

Each delivery costs about ten database round trips and a durable commit when stored alone;
stored together, a batch costs about the same as one. A delivery waits for the batch being
committed, then goes into the next one with everything that arrived meanwhile, and its caller
hears its outcome only once that batch has committed. No task runs while nothing is queued.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from posgate.bus.held import HeldConnection
from posgate.bus.retry import describe_error
from posgate.db.bulk import is_postgres
from posgate.gateway.claims import LeasingDispatcher
from posgate.gateway.deliveries import Delivery, IngestResult, Verdict
from posgate.gateway.ingest_store import leased, store, store_cached
from posgate.gateway.mapping_cache import MappingCache
from posgate.gateway.pipeline import decide, decide_cached

log = logging.getLogger(__name__)

_Queued = tuple[Delivery, "asyncio.Future[IngestResult]"]


class Ingestor:
    """Stores admitted deliveries (`posgate.gateway.pipeline.admit`) in shared transactions."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        cache: MappingCache | None = None,
        max_batch: int = 32,
        max_batch_bytes: int = 8 * 1024 * 1024,
        lanes: int = 2,
        on_commands: Callable[[], None] = lambda: None,
        dispatcher: LeasingDispatcher | None = None,
        linger: float = 1.0,
    ) -> None:
        """Commit at most `max_batch` deliveries per transaction, at most `lanes` at once.

        The cap keeps a burst from going into one batch while the other lane idles: with 64
        senders each waiting for its answer, a lane that took all of them left the event loop
        nothing to do while that one statement ran, and every sender then came back at once.
        Split in two, one batch is decided while the other is in the database (under wrk, 12-30%
        more webhooks per second; docs/gateway-pipeline.md).

        A batch's bodies together stay under `max_batch_bytes` (a larger body goes alone): the
        one-statement write sends them as hex inside one JSON parameter.

        An idle lane keeps its connection `linger` seconds before giving it back.

        New commands go to `dispatcher` after the commit, stored leased to it (it sends them
        without claiming them first); without one, `on_commands` is called so that a
        dispatcher claims them.
        """
        # A lane runs one batch at a time on a connection it keeps while busy (no pool checkout
        # per batch). Two lanes let a batch start while another waits on the database.
        self._lanes = [HeldConnection(sessions) for _ in range(lanes)]
        self._workers: list[asyncio.Task[None] | None] = [None] * lanes
        self._dispatcher = dispatcher
        self._cache = cache or MappingCache()
        self._max_batch = max_batch
        self._max_batch_bytes = max_batch_bytes
        self._on_commands = on_commands
        self._queue: deque[_Queued] = deque()
        self._arrived = asyncio.Event()
        self._closing = False
        self._linger = linger

    async def submit(self, delivery: Delivery) -> IngestResult:
        """Store `delivery`; its outcome once committed (raises if it could not be stored)."""
        done: asyncio.Future[IngestResult] = asyncio.get_running_loop().create_future()
        self._queue.append((delivery, done))
        self._arrived.set()
        for lane, worker in enumerate(self._workers):
            if worker is None or worker.done():
                self._workers[lane] = asyncio.create_task(self._drain(lane), name=f"posgate-ingest-{lane}")
                break
        return await done

    async def close(self) -> None:
        """Finish what is queued, then give the kept connections back."""
        self._closing = True
        self._arrived.set()
        await asyncio.gather(*(w for w in self._workers if w is not None), return_exceptions=True)
        for connection in self._lanes:
            await connection.close()

    async def _drain(self, lane: int) -> None:
        # The lane keeps its connection for `linger` seconds of idleness: taking one from the
        # pool costs three round trips of pre-ping, which at a few hundred webhooks a second
        # was a good part of a delivery's cost. A kept connection found dead is replaced by the
        # retry in `_store`.
        connection = self._lanes[lane]
        try:
            while await self._work_arrives():
                batch = self._next_batch()
                if not batch:
                    continue  # another lane took it
                try:
                    await self._commit(connection, batch)
                except Exception as error:
                    # A fault after the commit (handing over, answering) must not leave callers
                    # waiting for ever; what committed stays committed and is dispatched by claims.
                    log.error("ingest batch of %d not answered: %s", len(batch), describe_error(error))
                    for _, done in batch:
                        _settle(done, error)
        finally:
            await connection.close()

    async def _work_arrives(self) -> bool:
        """Whether deliveries are queued, waiting up to `linger` seconds for some (not when closing)."""
        if self._queue or self._closing:
            return bool(self._queue)
        self._arrived.clear()
        try:
            await asyncio.wait_for(self._arrived.wait(), self._linger)
        except TimeoutError:
            return bool(self._queue)
        return True

    def _next_batch(self) -> list[_Queued]:
        """The oldest deliveries, at most one per de-duplication key (the rest wait their turn).

        Stops before the delivery whose body would take the batch over `max_batch_bytes`.
        """
        batch: list[_Queued] = []
        later: list[_Queued] = []
        slots: set[tuple[str, str]] = set()
        size = 0
        while self._queue and len(batch) < self._max_batch:
            length = len(self._queue[0][0].request.body)
            if batch and size + length > self._max_batch_bytes:
                break
            queued = self._queue.popleft()
            slot = queued[0].dedupe_slot
            if slot in slots:
                later.append(queued)
                continue
            size += length
            if slot is not None:
                slots.add(slot)
            batch.append(queued)
        self._queue.extendleft(reversed(later))
        return batch

    async def _commit(self, connection: HeldConnection, batch: list[_Queued]) -> None:
        try:
            verdicts, results = await self._store(connection, batch)
        except Exception as error:
            if len(batch) == 1:
                _settle(batch[0][1], error)
                return
            # One delivery's fault (a value the database refuses) must not fail the others.
            log.warning(
                "group commit of %d deliveries failed (%s); storing each alone",
                len(batch),
                describe_error(error),
            )
            for queued in batch:
                await self._commit(connection, [queued])
            return
        if self._dispatcher is not None:
            self._dispatcher.hand_over(leased(verdicts))
        elif any(result.new_command_ids for result in results):
            self._on_commands()
        for (_, done), result in zip(batch, results, strict=True):
            _settle(done, result)

    async def _store(
        self, connection: HeldConnection, batch: list[_Queued]
    ) -> tuple[list[Verdict], list[IngestResult]]:
        """Decide and store `batch` in one transaction, again on a fresh connection if the kept one died."""
        for attempt in (1, 2):
            try:
                # Deferred: the look-ups commit alone, and so does the common batch's one write.
                async with connection.begin(deferred=True) as session:
                    return await self._decide_and_store(session, [delivery for delivery, _ in batch])
            except DBAPIError as error:
                # `begin` gave the dead connection back. Had the commit itself gone through, the
                # retry finds the keys claimed and answers duplicate; nothing is stored twice.
                if attempt > 1 or not error.connection_invalidated:
                    raise
        raise AssertionError("unreachable")

    async def _decide_and_store(
        self, session: AsyncSession, deliveries: list[Delivery]
    ) -> tuple[list[Verdict], list[IngestResult]]:
        # The common batch (merchants' mappings cached, every delivery new) is decided without
        # the database and written by one statement that checks the cached mappings' versions.
        cached = await decide_cached(session, deliveries, self._cache) if is_postgres(session) else None
        if cached is not None:
            verdicts, assumed = cached
            results = await store_cached(session, verdicts, assumed, leased_until=self._lease_end())
            if results is not None:
                return verdicts, results
        verdicts = await decide(session, deliveries, self._cache)
        return verdicts, await store(session, verdicts, leased_until=self._lease_end())

    def _lease_end(self) -> datetime | None:
        if self._dispatcher is None:
            return None
        return datetime.now(UTC) + self._dispatcher.lease


def _settle(done: asyncio.Future[IngestResult], outcome: IngestResult | Exception) -> None:
    # The caller may have gone (client disconnected); its delivery is stored all the same.
    if done.done():
        return
    if isinstance(outcome, Exception):
        done.set_exception(outcome)
    else:
        done.set_result(outcome)
