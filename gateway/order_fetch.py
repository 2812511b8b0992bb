"""Completes Square orders: fetch each `awaiting_fetch` SubmitOrder's lines, then let it wait for service.

Square's order webhooks name the order but carry no lines, so the Square adapter's SubmitOrder
is stored `awaiting_fetch`. The fetcher claims such commands in small batches the way the
dispatcher claims pending ones (`posgate.gateway.dispatch`): a short transaction pushes
`next_attempt_at` past the lease and counts the attempt (on PostgreSQL with `FOR UPDATE SKIP
LOCKED`, so several gateway processes never fetch the same order at once), the HTTP calls run
outside any transaction, and one transaction per command settles it. A fetcher that dies
mid-fetch leaves the lease to run out; the order is then fetched again, which is harmless.

Outcomes:
- fetched and every catalog line mapped: the command's body becomes the SubmitOrder with lines
  and totals (`posgate.gateway.adapters.square.order_lines`), state `awaiting_service`;
- Square busy or unreachable (429, 5xx, network): retried with exponential backoff (1 s up to
  5 minutes); after `max_attempts` tries `dead` with a processing failure
  (`square_order_fetch_exhausted`);
- refused (400/401/403/404), no token for the merchant, or an unreadable order: `dead` with a
  processing (or validation) failure at once;
- a catalog line without a SKU mapping: `dead` with a mapping failure (`unmapped_sku`), unless
  the account's unmapped-SKU policy is `create`.

Every one of these failures names the command, and replaying it (`posgate.gateway.failures`)
puts the command back to `awaiting_fetch`, due at once (`requeue_state`): the fetch runs again
with the mappings and tokens of then. Dead rather than parked in `awaiting_fetch`, so an open
failure is the one place the operator's work shows and nothing retries behind their back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from posgate.bus.retry import Backoff, describe_error
from posgate.contracts import routing
from posgate.gateway import mappings
from posgate.gateway.adapters.base import AdapterError
from posgate.gateway.adapters.square.order_lines import PROVIDER, complete_order, parse_retrieved
from posgate.gateway.adapters.square.orders_api import OrderFetchError, SquareOrdersClient
from posgate.gateway.claims import Claimed
from posgate.gateway.failure_rows import record_failure
from posgate.gateway.mapping_policies import CreatingLookup, create_missing, policy_of
from posgate.gateway.tables import CommandState, FailureClass, UnmappedSkuPolicy, commands, raw_payloads
from posgate.runtime.periodic import Periodic

log = logging.getLogger(__name__)

EXHAUSTED = "square_order_fetch_exhausted"
# Processing failures only the fetcher records; a command's mapping or validation failure can
# only come from the fetcher too (the pipeline's name no command, the dispatcher's are processing).
FETCH_REASONS = frozenset(
    {EXHAUSTED, "square_order_fetch_refused", "square_order_fetch_invalid", "square_token_missing"}
)


def requeue_state(failure_class: str, reason: str, provider: str) -> str:
    """The state replaying a command's failure puts it in: fetch again, or send again.

    Only the fetcher records failures of a Square command with these reasons or classes; the
    provider check keeps any other command's replay (say a dispatch refusal) from being fetched.
    """
    fetched = reason in FETCH_REASONS or failure_class in (FailureClass.MAPPING, FailureClass.VALIDATION)
    return CommandState.AWAITING_FETCH if provider == PROVIDER and fetched else CommandState.PENDING


class OrderFetcher(Periodic):
    """Fetches the lines of `awaiting_fetch` Square orders through `client` (see the module docstring)."""

    name = "gateway-order-fetch"

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        client: SquareOrdersClient,
        *,
        max_attempts: int = 40,
        backoff: Backoff | None = None,
        batch: int = 8,
        lease: timedelta = timedelta(seconds=30),
        interval_s: float = 1.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """Create a fetcher; `lease` must exceed the client's timeout."""
        super().__init__(interval_s)
        self._sessions = sessions
        self._client = client
        self._max_attempts = max_attempts
        self._backoff = backoff or Backoff(base_s=1.0, cap_s=300.0)
        self._batch = batch
        self._lease = lease
        self._clock = clock

    async def sweep(self) -> None:
        """Fetch due orders until fewer than a batch are due (or `stop()`)."""
        while not self.stopping and await self.fetch_due() >= self._batch:
            pass

    async def fetch_due(self) -> int:
        """Claim one batch of due commands, fetch their orders and settle each; how many were claimed."""
        claimed = await self._claim()
        outcomes = await asyncio.gather(
            *(self._fetch(command) for command in claimed), return_exceptions=True
        )
        for command, outcome in zip(claimed, outcomes, strict=True):
            if isinstance(outcome, Exception):
                # Unsettled (the database failed, say): the lease runs out and it is fetched again.
                log.warning(
                    "square order fetch of command %d crashed: %s", command.id, describe_error(outcome)
                )
        return len(claimed)

    async def _claim(self) -> list[Claimed]:
        now = self._clock()
        async with self._sessions.begin() as session:
            query = (
                select(commands, raw_payloads.c.provider, raw_payloads.c.topic)
                .join(raw_payloads, raw_payloads.c.id == commands.c.raw_payload_id)
                .where(commands.c.state == CommandState.AWAITING_FETCH, commands.c.next_attempt_at <= now)
                .order_by(commands.c.next_attempt_at, commands.c.id)
                .limit(self._batch)
            )
            if session.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(of=commands, skip_locked=True)
            rows = (await session.execute(query)).all()
            if rows:
                await session.execute(
                    update(commands)
                    .where(commands.c.id.in_([row.id for row in rows]))
                    .values(attempts=commands.c.attempts + 1, next_attempt_at=now + self._lease)
                )
        return [Claimed.from_row(row) for row in rows]

    async def _fetch(self, command: Claimed) -> None:
        request = routing.pb.SubmitOrderRequest.FromString(command.body)
        merchant = request.meta.source.merchant_id
        try:
            body = await self._client.retrieve_order(merchant, request.order.external_order_id)
        except OrderFetchError as error:
            await self._fetch_failed(command, error)
            return
        async with self._sessions.begin() as session:
            try:
                await self._complete(session, command, request, body)
            except AdapterError as error:
                await self._give_up(session, command, error.failure_class, error.reason, error.detail)

    async def _complete(
        self, session: AsyncSession, command: Claimed, request: routing.pb.SubmitOrderRequest, body: object
    ) -> None:
        """Write the completed SubmitOrder; raises `AdapterError` when the order cannot be completed."""
        merchant = request.meta.source.merchant_id
        retrieved = parse_retrieved(body)
        policy = await policy_of(session, PROVIDER, merchant)
        snapshot = await mappings.snapshot(session, PROVIDER, merchant, policy)
        lookup = CreatingLookup(snapshot) if policy == UnmappedSkuPolicy.CREATE else snapshot
        completed = routing.pb.SubmitOrderRequest()
        completed.CopyFrom(request)
        completed.order.CopyFrom(complete_order(request.order, retrieved, lookup, merchant))
        if isinstance(lookup, CreatingLookup):
            await create_missing(session, lookup.created, self._clock())
        await session.execute(
            update(commands)
            # Guarded: a replay or another fetcher may have moved the command meanwhile.
            .where(commands.c.id == command.id, commands.c.state == CommandState.AWAITING_FETCH)
            .values(
                body=completed.SerializeToString(deterministic=True),
                state=CommandState.AWAITING_SERVICE,
                last_error=None,
            )
        )

    async def _fetch_failed(self, command: Claimed, error: OrderFetchError) -> None:
        async with self._sessions.begin() as session:
            if not error.retryable:
                await self._give_up(session, command, FailureClass.PROCESSING, error.reason, error.detail)
                return
            if command.attempts >= self._max_attempts:
                detail = f"{error.detail} after {command.attempts} attempts"
                await self._give_up(session, command, FailureClass.PROCESSING, EXHAUSTED, detail)
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
        await record_failure(
            session,
            failure_class=failure_class,
            reason=reason,
            detail=f"{command.target}: {detail}",
            provider=command.provider,
            topic=command.topic,
            raw_payload_id=command.raw_payload_id,
            command_id=command.id,
            tenant_id=command.tenant_id,
            store_id=command.store_id or None,
            now=now,
        )
        log.warning("square order fetch of command %d failed (%s): %s", command.id, reason, detail)
