"""Sends stored commands to the services: claim due ones, send, mark; retry with backoff.

A claim leases rows (pushes `next_attempt_at` past the send timeout) in a short transaction,
so the database is not held while a service answers; on PostgreSQL the claim takes `FOR
UPDATE SKIP LOCKED`, so dispatchers in several processes never claim the same row. A
dispatcher that dies mid-send leaves its rows leased; they become due again when the lease
ends and are sent again, which the services' idempotency keys turn into a no-op. Order across
commands is not guaranteed: stock counts are applied by version and movements commute.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from posgate.bus.held import HeldConnection
from posgate.bus.retry import Backoff, describe_error
from posgate.db.bulk import among
from posgate.gateway.claims import Claimed
from posgate.gateway.failure_rows import record_command_failure
from posgate.gateway.outcome_log import OutcomeLog
from posgate.gateway.round_gap import RoundGap
from posgate.gateway.sending import BatchSender, CommandSender, ItemsRejected, PermanentSendError
from posgate.gateway.tables import CommandState, FailureClass, commands, raw_payloads

log = logging.getLogger(__name__)


class Dispatcher:
    """Dispatches due pending commands through `senders`, keyed by gRPC service name."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        senders: Mapping[str, CommandSender],
        *,
        max_attempts: int = 8,
        backoff: Backoff | None = None,
        batch: int = 64,
        lease: timedelta = timedelta(seconds=60),
        poll_interval: float = 0.2,
        record_spacing: float = 0.05,
        gap_per_command: float = 0.001,
        most_gap: float = 0.004,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """Create a dispatcher; `lease` must exceed the senders' call timeout.

        Outcomes of hand-over rounds are recorded together once the oldest is `record_spacing`
        seconds old (`posgate.gateway.outcome_log`); after a round that handed n commands over
        the next waits until min(n * `gap_per_command`, `most_gap`) seconds after it
        (`posgate.gateway.round_gap`).
        """
        self._sessions = sessions
        self._senders = dict(senders)
        self._max_attempts = max_attempts
        # Capped at 30 s: a service back from an outage is reached within half a minute.
        self._backoff = backoff or Backoff(base_s=0.5, cap_s=30.0)
        self._batch = batch
        self._lease = lease
        self._poll_interval = poll_interval
        self._clock = clock
        self._stopping = False
        self._wake = asyncio.Event()
        self._handed: list[Claimed] = []
        self._claimed_at = 0.0
        self._claim_now = True
        self._round_backoff = Backoff(base_s=0.2, cap_s=5.0)
        self._held = HeldConnection(sessions)
        self._running = False
        self._gap = RoundGap(gap_per_command, most_gap)
        self._outcomes = OutcomeLog(self._record_outcomes, spacing=record_spacing)

    async def dispatch_due(self) -> int:
        """Claim, send and settle one batch of due commands; returns how many were claimed."""
        claimed = await self._claim()
        if claimed:
            await self.send_and_settle(claimed)
        return len(claimed)

    async def send_and_settle(self, claimed: Sequence[Claimed]) -> None:
        """Send leased commands concurrently, then record each outcome in one transaction."""
        await self._record_outcomes(claimed, await self._send_all(claimed))

    async def _record_outcomes(
        self, claimed: Sequence[Claimed], outcomes: Sequence[Exception | None]
    ) -> None:
        now = self._clock()
        sent = [c.id for c, error in zip(claimed, outcomes, strict=True) if _delivered(error)]
        async with self._transaction() as session:
            if sent:
                # One statement for the usual case, however many commands the round sent.
                await session.execute(
                    update(commands)
                    .where(among(session, commands.c.id, sent))
                    .values(state=CommandState.DISPATCHED, dispatched_at=now, last_error=None)
                )
            for command, error in zip(claimed, outcomes, strict=True):
                if error is not None:
                    await self._settle(session, command, error, now)

    async def _claim(self) -> list[Claimed]:
        now = self._clock()
        async with self._transaction() as session:
            query = (
                select(commands, raw_payloads.c.provider, raw_payloads.c.topic)
                .join(raw_payloads, raw_payloads.c.id == commands.c.raw_payload_id)
                .where(commands.c.state == CommandState.PENDING, commands.c.next_attempt_at <= now)
                .where(or_(*(commands.c.target.startswith(f"{service}/") for service in self._senders)))
                .order_by(commands.c.next_attempt_at, commands.c.id)
                .limit(self._batch)
            )
            if session.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(of=commands, skip_locked=True)
            rows = (await session.execute(query)).all()
            if not rows:
                return []
            await session.execute(
                update(commands)
                .where(among(session, commands.c.id, [row.id for row in rows]))
                .values(attempts=commands.c.attempts + 1, next_attempt_at=now + self._lease)
            )
        return [Claimed.from_row(row) for row in rows]

    def _transaction(self) -> AbstractAsyncContextManager[AsyncSession]:
        """A session in a transaction committed at the end of the block."""
        # Inside run() rounds are sequential: a connection kept while busy spares each
        # transaction a pool checkout and its ping.
        return self._held.begin() if self._running else self._sessions.begin()

    async def _send_all(self, claimed: Sequence[Claimed]) -> list[Exception | None]:
        by_service: dict[str, list[Claimed]] = {}
        for command in claimed:
            by_service.setdefault(command.target.split("/", 1)[0], []).append(command)
        rounds = await asyncio.gather(*(self._send_service(s, members) for s, members in by_service.items()))
        outcomes = {
            c.id: outcome for members, sent in rounds for c, outcome in zip(members, sent, strict=True)
        }
        return [outcomes[command.id] for command in claimed]

    async def _send_service(
        self, service: str, members: list[Claimed]
    ) -> tuple[list[Claimed], list[Exception | None]]:
        sender = self._senders[service]
        if isinstance(sender, BatchSender):
            try:
                return members, await sender.send_batch(members)
            except Exception as error:
                return members, [error] * len(members)
        return members, list(await asyncio.gather(*(self._send(command) for command in members)))

    async def _send(self, command: Claimed) -> Exception | None:
        sender = self._senders[command.target.split("/", 1)[0]]
        try:
            await sender.send(command.target, command.body, command.idempotency_key)
        except Exception as error:
            return error
        return None

    async def _settle(self, session: AsyncSession, command: Claimed, error: Exception, now: datetime) -> None:
        """Record a send that did not simply succeed: items rejected, retry later, or dead."""
        row = update(commands).where(commands.c.id == command.id)
        if isinstance(error, ItemsRejected):
            # Delivered (marked with the others); the rejected items are recorded for review.
            await self._record(session, command, "items_rejected", "\n".join(error.details), now)
            return
        detail = describe_error(error)
        if isinstance(error, PermanentSendError) or command.attempts >= self._max_attempts:
            await session.execute(row.values(state=CommandState.DEAD, last_error=detail))
            reason = "rejected" if isinstance(error, PermanentSendError) else "attempts_exhausted"
            await self._record(session, command, reason, detail, now)
            log.warning("command %d is dead after %d attempts: %s", command.id, command.attempts, detail)
            return
        retry_at = now + timedelta(seconds=self._backoff.delay(command.attempts))
        await session.execute(row.values(next_attempt_at=retry_at, last_error=detail))

    async def _record(
        self, session: AsyncSession, command: Claimed, reason: str, detail: str, now: datetime
    ) -> None:
        await record_command_failure(
            session, command, failure_class=FailureClass.PROCESSING, reason=reason, detail=detail, now=now
        )

    def wake(self) -> None:
        """Run a round now, claiming due commands (commands were committed or requeued)."""
        self._claim_now = True
        self._wake.set()

    def hand_over(self, claimed: list[Claimed]) -> None:
        """Send commands this process stored already leased to it (`LeasingDispatcher`), unclaimed."""
        self._handed.extend(claimed)
        self._wake.set()
        if len(self._handed) >= self._batch:
            self._gap.end()

    @property
    def lease(self) -> timedelta:
        """How long a claim (or a hand-over) keeps a command from other dispatchers."""
        return self._lease

    async def run(self) -> None:
        """Dispatch until `stop()`: at once when woken, else every poll interval.

        The database failing backs the rounds off (commands wait, none is lost).
        """
        self._running = True
        try:
            await self._rounds()
        finally:
            with contextlib.suppress(Exception):
                await self._outcomes.flush()
            self._running = False
            await self._held.close()

    async def _rounds(self) -> None:
        failures = 0
        while not self._stopping:
            self._wake.clear()
            if len(self._handed) < self._batch:
                await self._gap.wait()
            try:
                worked = await self._round()
            except Exception as error:
                failures += 1
                log.warning("dispatch round failed: %s", describe_error(error))
                await self._pause(self._round_backoff.delay(failures))
                continue
            failures = 0
            if not worked:
                # Idle until the next claim or outcome write is due. The connection is kept (a
                # pool checkout costs three round trips of pre-ping); a failed round gives it
                # back, and the next takes a fresh one.
                await self._pause(self._idle_for())

    async def _round(self) -> int:
        worked = 0
        began = time.monotonic()
        # A failure to record surfaces here, in a later round (the leases then resend).
        await self._outcomes.write_due()
        handed = self._handed[: self._batch]
        self._gap.round_began(began, len(handed))
        if handed:
            del self._handed[: self._batch]
            self._outcomes.add(handed, await self._send_all(handed))
            worked = len(handed)
        # Due commands (retries, leases of dead processes) get a turn every poll interval, and
        # at once after `wake()`; hand-overs alone do not make the dispatcher look for them.
        if self._claim_now or time.monotonic() - self._claimed_at >= self._poll_interval:
            self._claim_now = False
            self._claimed_at = time.monotonic()
            worked += await self.dispatch_due()
        return worked

    def _idle_for(self) -> float:
        claim_in = self._claimed_at + self._poll_interval - time.monotonic()
        write_in = self._outcomes.due_in()
        return claim_in if write_in is None else min(claim_in, write_in)

    async def _pause(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
        except TimeoutError:
            return

    def stop(self) -> None:
        """Ask `run()` to return after the round in progress."""
        self._stopping = True
        self._wake.set()
        self._gap.end()


def _delivered(error: Exception | None) -> bool:
    """The service took the command (even if it rejected some of its items)."""
    return error is None or isinstance(error, ItemsRejected)


async def release_awaiting(session: AsyncSession, service: str, now: datetime) -> int:
    """Make the `awaiting_service` commands of a newly dispatchable service pending."""
    result = await session.execute(
        update(commands)
        .where(commands.c.state == CommandState.AWAITING_SERVICE, commands.c.target.startswith(f"{service}/"))
        .values(state=CommandState.PENDING, next_attempt_at=now)
    )
    return int(getattr(result, "rowcount", 0) or 0)
