"""Completes what a webhook only named: fetch each `awaiting_fetch` command's content from the vendor.

Some webhooks name an entity but not its content (Square orders without lines, Square catalog
versions without objects), so the adapter's command is stored `awaiting_fetch`. One
`CommandFetcher` completes every such command, with one small `FetchStep` per kind of
command, chosen by the command's target: `posgate.gateway.order_fetch` (SubmitOrder, Square
RetrieveOrder) and `posgate.gateway.catalog_fetch` (UpsertItems, Square SearchCatalogObjects).

The fetcher claims such commands in small batches the way the dispatcher claims pending ones
(`posgate.gateway.dispatch`): a short transaction pushes `next_attempt_at` past the lease and
counts the attempt (on PostgreSQL with `FOR UPDATE SKIP LOCKED`, so several gateway processes
never fetch the same command at once), the HTTP calls run outside any transaction, and one
transaction per command settles it. A fetcher that dies mid-fetch leaves the lease to run out;
the command is then fetched again, which is harmless.

Outcomes:
- fetched and every vendor item mapped: the command's body becomes the completed request,
  state `awaiting_service`;
- vendor busy or unreachable (429, 5xx, network): retried with exponential backoff (1 s up to
  5 minutes); after `max_attempts` tries `dead` with the step's processing failure
  (`square_order_fetch_exhausted`, `square_catalog_fetch_exhausted`);
- refused (400/401/403/404), no token for the merchant, or an unreadable answer: `dead` with a
  processing (or validation) failure at once;
- a vendor item without a SKU mapping: `dead` with a mapping failure (`unmapped_sku`), unless
  the account's unmapped-SKU policy is `create`; a step may instead complete the command with
  the items that map (`Held`, catalogs): the rest is then stored as a new `dead` command of
  its own with that failure, and replaying it fetches again.

Every one of these failures names the command, and replaying it (`posgate.gateway.failures`)
puts the command back to `awaiting_fetch`, due at once (`requeue_state`): the fetch runs again
with the mappings and tokens of then. Dead rather than parked in `awaiting_fetch`, so an open
failure is the one place the operator's work shows and nothing retries behind their back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

from google.protobuf.message import Message
from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from posgate.bus.retry import Backoff, describe_error
from posgate.db.bulk import among
from posgate.gateway import mappings
from posgate.gateway.adapters.base import AdapterError, FetchError, MappingLookup
from posgate.gateway.adapters.square.api import FETCH_REASONS, PROVIDER
from posgate.gateway.claims import Claimed
from posgate.gateway.failure_rows import record_command_failure
from posgate.gateway.mapping_policies import CreatingLookup, create_missing, policy_of
from posgate.gateway.tables import CommandState, FailureClass, UnmappedSkuPolicy, commands, raw_payloads
from posgate.runtime.periodic import Periodic

log = logging.getLogger(__name__)


def requeue_state(failure_class: str, reason: str, provider: str) -> str:
    """The state replaying a command's failure puts it in: fetch again, or send again.

    Only the fetcher records failures of a Square command with these reasons or classes (the
    pipeline's name no command, the dispatcher's are processing); the provider check keeps any
    other command's replay (say a dispatch refusal) from being fetched.
    """
    fetched = reason in FETCH_REASONS or failure_class in (FailureClass.MAPPING, FailureClass.VALIDATION)
    return CommandState.AWAITING_FETCH if provider == PROVIDER and fetched else CommandState.PENDING


@dataclass(frozen=True, slots=True)
class Held:
    """A completion that left some vendor items out for review, and what waits for the rest.

    Attributes:
        completed: The command's request with the items that mapped.
        missing: Why each item left out could not be mapped (`MappingMissing`).
        remainder: The request of a new command, under its own idempotency key (`key`), stored
            `dead` with the mapping failure: replaying it fetches again for the held items.
        key: The remainder's idempotency key.

    """

    completed: Message
    missing: Sequence[AdapterError]
    remainder: Message
    key: str


@dataclass(frozen=True, slots=True)
class Fetched:
    """What a step read from the vendor for one command, and how to complete the command with it.

    Attributes:
        merchant_id: The vendor merchant whose mappings and unmapped-SKU policy apply.
        complete: The completed request under a mapping lookup, or `Held` when only part of it
            maps; raises `AdapterError` when the command cannot be completed (`unmapped_sku`, an
            unreadable answer).

    """

    merchant_id: str
    complete: Callable[[MappingLookup], Message | Held]


class FetchStep(Protocol):
    """How one kind of `awaiting_fetch` command is completed from the vendor's API."""

    @property
    def target(self) -> str:
        """The full gRPC method of the commands this step completes."""
        ...

    @property
    def exhausted(self) -> str:
        """The failure reason when the vendor stayed unavailable for every attempt."""
        ...

    async def fetch(self, sessions: async_sessionmaker[AsyncSession], command: Claimed) -> Fetched:
        """Read what `command` lacks; raises `FetchError` when the vendor did not answer it."""
        ...


class CommandFetcher(Periodic):
    """Completes `awaiting_fetch` commands through their targets' steps (see the module docstring)."""

    name = "gateway-command-fetch"

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        steps: Iterable[FetchStep],
        *,
        max_attempts: int = 40,
        backoff: Backoff | None = None,
        batch: int = 8,
        lease: timedelta = timedelta(seconds=30),
        interval_s: float = 1.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """Create a fetcher; `lease` must exceed the steps' HTTP timeouts (all their calls together)."""
        super().__init__(interval_s)
        self._sessions = sessions
        self._steps = {step.target: step for step in steps}
        self._max_attempts = max_attempts
        self._backoff = backoff or Backoff(base_s=1.0, cap_s=300.0)
        self._batch = batch
        self._lease = lease
        self._clock = clock

    async def sweep(self) -> None:
        """Fetch due commands until fewer than a batch are due (or `stop()`)."""
        while not self.stopping and await self.fetch_due() >= self._batch:
            pass

    async def fetch_due(self) -> int:
        """Claim one batch of due commands, fetch and settle each; how many were claimed."""
        claimed = await self._claim()
        outcomes = await asyncio.gather(*(self._fetch(each) for each in claimed), return_exceptions=True)
        for command, outcome in zip(claimed, outcomes, strict=True):
            if isinstance(outcome, Exception):
                # Unsettled (the database failed, say): the lease runs out and it is fetched again.
                log.warning("fetch of command %d crashed: %s", command.id, describe_error(outcome))
        return len(claimed)

    async def _claim(self) -> list[Claimed]:
        now = self._clock()
        async with self._sessions.begin() as session:
            query = (
                select(commands, raw_payloads.c.provider, raw_payloads.c.topic)
                .join(raw_payloads, raw_payloads.c.id == commands.c.raw_payload_id)
                .where(commands.c.state == CommandState.AWAITING_FETCH, commands.c.next_attempt_at <= now)
                .where(commands.c.target.in_(sorted(self._steps)))
                .order_by(commands.c.next_attempt_at, commands.c.id)
                .limit(self._batch)
            )
            if session.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(of=commands, skip_locked=True)
            rows = (await session.execute(query)).all()
            if rows:
                await session.execute(
                    update(commands)
                    .where(among(session, commands.c.id, [row.id for row in rows]))
                    .values(attempts=commands.c.attempts + 1, next_attempt_at=now + self._lease)
                )
        return [Claimed.from_row(row) for row in rows]

    async def _fetch(self, command: Claimed) -> None:
        step = self._steps[command.target]
        try:
            fetched = await step.fetch(self._sessions, command)
        except FetchError as error:
            await self._fetch_failed(command, step, error)
            return
        async with self._sessions.begin() as session:
            try:
                await self._complete(session, command, fetched)
            except AdapterError as error:
                await self._give_up(session, command, error.failure_class, error.reason, error.detail)

    async def _complete(self, session: AsyncSession, command: Claimed, fetched: Fetched) -> None:
        """Write the completed request; raises `AdapterError` when the command cannot be completed."""
        merchant = fetched.merchant_id
        policy = await policy_of(session, command.provider, merchant)
        snapshot = await mappings.snapshot(session, command.provider, merchant, policy)
        lookup = CreatingLookup(snapshot) if policy == UnmappedSkuPolicy.CREATE else snapshot
        completed = fetched.complete(lookup)
        held = completed if isinstance(completed, Held) else None
        if isinstance(completed, Held):
            completed = completed.completed
        if isinstance(lookup, CreatingLookup):
            await create_missing(session, lookup.created, self._clock())
        result = await session.execute(
            update(commands)
            # Guarded: a replay or another fetcher may have moved the command meanwhile.
            .where(commands.c.id == command.id, commands.c.state == CommandState.AWAITING_FETCH)
            .values(
                body=completed.SerializeToString(deterministic=True),
                state=CommandState.AWAITING_SERVICE,
                last_error=None,
            )
        )
        updated = getattr(result, "rowcount", 1)
        if held is not None and updated:
            await self._hold(session, command, held)

    async def _hold(self, session: AsyncSession, command: Claimed, held: Held) -> None:
        """Store the remainder of a partly mapped command as a dead command with its mapping failure."""
        now = self._clock()
        detail = f"held for review: {', '.join(missing.detail for missing in held.missing)}"
        reason = held.missing[0].reason
        remainder = held.remainder.SerializeToString(deterministic=True)
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        statement = (
            dialect.insert(commands)
            .values(
                raw_payload_id=command.raw_payload_id,
                target=command.target,
                idempotency_key=held.key,
                tenant_id=command.tenant_id,
                store_id=command.store_id,
                body=remainder,
                state=CommandState.DEAD,
                attempts=0,
                next_attempt_at=now,
                last_error=f"{reason}: {detail}",
                created_at=now,
            )
            # A second fetch of the same command (its lease ran out) holds the same items once.
            .on_conflict_do_nothing(index_elements=["idempotency_key"])
            .returning(commands.c.id)
        )
        held_id = (await session.execute(statement)).scalar_one_or_none()
        if held_id is None:
            return
        kept = replace(command, id=int(held_id), idempotency_key=held.key, body=remainder, attempts=0)
        await record_command_failure(
            session, kept, failure_class=FailureClass.MAPPING, reason=reason, detail=detail, now=now
        )
        log.warning(
            "fetch of command %d held items for review in command %d: %s", command.id, held_id, detail
        )

    async def _fetch_failed(self, command: Claimed, step: FetchStep, error: FetchError) -> None:
        async with self._sessions.begin() as session:
            if not error.retryable:
                await self._give_up(session, command, FailureClass.PROCESSING, error.reason, error.detail)
                return
            if command.attempts >= self._max_attempts:
                detail = f"{error.detail} after {command.attempts} attempts"
                await self._give_up(session, command, FailureClass.PROCESSING, step.exhausted, detail)
                return
            retry_at = self._clock() + timedelta(seconds=self._backoff.delay(command.attempts))
            await session.execute(
                update(commands)
                .where(commands.c.id == command.id, commands.c.state == CommandState.AWAITING_FETCH)
                .values(next_attempt_at=retry_at, last_error=f"{error.reason}: {error.detail}")
            )

    async def _give_up(
        self, session: AsyncSession, command: Claimed, failure_class: str, reason: str, detail: str
    ) -> None:
        """Dead-letter the command with a failure naming it (replaying it fetches again)."""
        now = self._clock()
        result = await session.execute(
            update(commands)
            .where(commands.c.id == command.id, commands.c.state == CommandState.AWAITING_FETCH)
            .values(state=CommandState.DEAD, last_error=f"{reason}: {detail}")
        )
        if not getattr(result, "rowcount", 1):
            return  # moved meanwhile (replayed): nothing of ours to record
        await record_command_failure(
            session, command, failure_class=failure_class, reason=reason, detail=detail, now=now
        )
        log.warning("fetch of command %d failed (%s): %s", command.id, reason, detail)
