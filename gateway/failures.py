"""Failed deliveries and commands: list them by impact, inspect one, replay them.

Impact order, kept simple: by the topic the delivery came in on (orders, then inventory and
stock feeds, then menus, then store status, then anything else), then by how many distinct
stores the open failures with the same (provider, tenant, reason) touch, newest first.

Replay re-runs a failure's raw payload through the *current* adapter and mappings (after a
mapping was added, or an adapter fixed), held to the tenant that signed it: its commands must
be for that tenant, as on arrival (`tenant_mismatch` otherwise). It skips the signature check
unless the failure was an auth failure: every other failure's delivery passed verification
when it arrived, its signer was recorded then, and its timestamp is by now outside any replay
window, so re-checking could only fail. A delivery without a recorded signer (stored before
signers were recorded) is refused (`signer_not_recorded`) rather than run unchecked. An auth
failure is re-verified with each tenant's current secrets at its original receive time,
because the point of replaying it is that the secret configuration was fixed; the one tenant
whose secrets verify is its signer. Commands are written only if their idempotency key is
new, so replaying twice writes nothing the second time. A replay that fails again records a
new failure (with the current reason) and resolves the old one. A failed order fetch's
command is requeued to be fetched again (`posgate.gateway.order_fetch.requeue_state`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import Row, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from posgate.gateway.adapters.base import Adapter, AdapterError, InboundRequest, SignatureError, Topic
from posgate.gateway.adapters.registry import ADAPTERS
from posgate.gateway.command_fetch import requeue_state
from posgate.gateway.deliveries import Delivery
from posgate.gateway.mapping_cache import MappingCache
from posgate.gateway.pipeline import parse, run_batch
from posgate.gateway.tables import FailureClass, commands, failures, raw_payloads

# One tenant's account with a provider: (tenant, the secrets it signs with, several while rotating).
TenantCredential = tuple[str, Sequence[bytes]]
CredentialsFor = Callable[[str], Sequence[TenantCredential]]

TOPIC_IMPACT = {Topic.ORDERS: 0, Topic.INVENTORY: 1, Topic.STOCK: 1, Topic.MENU: 2, Topic.STORE_STATUS: 3}


@dataclass(frozen=True, slots=True)
class FailureFilter:
    """Which failures to list; None matches anything. `open_only` hides resolved ones."""

    failure_class: str | None = None
    provider: str | None = None
    tenant_id: str | None = None
    store_id: str | None = None
    since: datetime | None = None
    open_only: bool = True


@dataclass(frozen=True, slots=True)
class FailureView:
    """One failure as an operator sees it; `affected_stores` counts its (provider, tenant, reason) group."""

    id: int
    failure_class: str
    reason: str
    detail: str
    provider: str
    topic: str
    tenant_id: str | None
    store_id: str | None
    raw_payload_id: int | None
    command_id: int | None
    created_at: datetime
    replayed_at: datetime | None
    resolved: bool
    affected_stores: int = 0


@dataclass(frozen=True, slots=True)
class RawPayload:
    """A stored delivery (credential headers were never stored) and the tenant that signed it."""

    id: int
    provider: str
    topic: str
    url: str
    headers: dict[str, str]
    body: bytes
    received_at: datetime
    outcome: str
    signed_by_tenant: str | None = None


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """What replaying one failure did; `created_command_ids` holds only commands new to the store."""

    failure_id: int
    outcome: str
    created_command_ids: tuple[int, ...] = ()
    failure_class: str | None = None
    reason: str = ""


async def list_failures(session: AsyncSession, where: FailureFilter, limit: int = 100) -> list[FailureView]:
    """Failures matching `where`, most impactful first (see the module docstring)."""
    query = select(failures)
    for column, value in (
        (failures.c.failure_class, where.failure_class),
        (failures.c.provider, where.provider),
        (failures.c.tenant_id, where.tenant_id),
        (failures.c.store_id, where.store_id),
    ):
        if value is not None:
            query = query.where(column == value)
    if where.since is not None:
        query = query.where(failures.c.created_at >= where.since)
    if where.open_only:
        query = query.where(failures.c.resolved.is_(False))
    views = [_view(row) for row in (await session.execute(query)).all()]
    stores: dict[tuple[str, str | None, str], set[str]] = defaultdict(set)
    for view in views:
        if view.store_id:
            stores[(view.provider, view.tenant_id, view.reason)].add(view.store_id)
    ranked = [_with_stores(view, len(stores[(view.provider, view.tenant_id, view.reason)])) for view in views]
    ranked.sort(key=lambda view: -view.created_at.timestamp())
    ranked.sort(key=lambda view: (TOPIC_IMPACT.get(view.topic, len(TOPIC_IMPACT)), -view.affected_stores))
    return ranked[:limit]


async def get_failure(session: AsyncSession, failure_id: int) -> tuple[FailureView, RawPayload | None] | None:
    """One failure and the delivery it came from, or None when there is no such failure."""
    row = (await session.execute(select(failures).where(failures.c.id == failure_id))).one_or_none()
    if row is None:
        return None
    view = _view(row)
    if view.raw_payload_id is None:
        return view, None
    raw = await _raw(session, view.raw_payload_id)
    return view, raw


async def replay(
    sessions: async_sessionmaker[AsyncSession],
    ids: Sequence[int],
    now: datetime,
    *,
    secrets_for: CredentialsFor = lambda _provider: (),
    adapters: Mapping[str, Adapter] = ADAPTERS,
) -> list[ReplayResult]:
    """Replay each failure in its own transaction (see the module docstring).

    `secrets_for(provider)` gives each tenant's credential with that provider; auth failures are
    re-verified with them.
    """
    results = []
    for failure_id in ids:
        async with sessions() as session:
            results.append(await _replay_one(session, failure_id, now, secrets_for, adapters))
            await session.commit()
    return results


async def _replay_one(
    session: AsyncSession,
    failure_id: int,
    now: datetime,
    secrets_for: CredentialsFor,
    adapters: Mapping[str, Adapter],
) -> ReplayResult:
    found = await get_failure(session, failure_id)
    if found is None:
        return ReplayResult(failure_id, "not_found")
    view, raw = found
    if view.resolved:
        return ReplayResult(failure_id, "already_resolved")
    if view.command_id is not None:
        return await _requeue(session, view, now)
    adapter = adapters.get(view.provider)
    if raw is None or adapter is None:
        return ReplayResult(failure_id, "not_replayable")
    if view.failure_class != FailureClass.AUTH and raw.signed_by_tenant is None:
        # Left open: running it without its signer could write for any tenant.
        return ReplayResult(failure_id, "not_replayable", reason="signer_not_recorded")
    await _resolve(session, failure_id, now)
    return await _rerun(session, view, raw, adapter, now=now, secrets_for=secrets_for)


async def _rerun(
    session: AsyncSession,
    view: FailureView,
    raw: RawPayload,
    adapter: Adapter,
    *,
    now: datetime,
    secrets_for: CredentialsFor,
) -> ReplayResult:
    request = InboundRequest(raw.provider, raw.topic, raw.url, raw.headers, raw.body, raw.received_at)
    # Replayed on purpose: no de-duplication, the row it was stored as is updated in place.
    delivery = Delivery(
        request, adapter, now, signed_by=raw.signed_by_tenant, raw_id=raw.id, deduplicate=False
    )
    if view.failure_class == FailureClass.AUTH:
        try:
            delivery.signed_by = verified_signer(adapter, request, secrets_for(raw.provider))
        except AdapterError as error:
            delivery.error = error
    if delivery.error is None:
        parse(delivery)
    # A fresh cache: a replay must see the mappings as they are now.
    [result] = await run_batch(session, [delivery], MappingCache())
    return ReplayResult(view.id, result.outcome, result.new_command_ids, result.failure_class, result.reason)


def verified_signer(
    adapter: Adapter, request: InboundRequest, credentials: Sequence[TenantCredential]
) -> str:
    """The one tenant whose secrets verify `request` at its receive time.

    Every credential is tried, as at the webhook door (`gateway.http.security.signing_tenant`).

    Raises:
        AdapterError: No credential verifies (the adapter's own verdict), or several do.

    """
    verified: list[str] = []
    for tenant, secrets in credentials:
        try:
            adapter.verify_signature(request, secrets, request.received_at)
        except AdapterError:
            continue
        verified.append(tenant)
    if len(verified) > 1:
        # Two tenants sharing a secret is a configuration fault; writing for either would guess.
        raise SignatureError("ambiguous_signer", f"{len(verified)} tenants' secrets verify the delivery")
    if verified:
        return verified[0]
    every_secret = tuple(secret for _, secrets in credentials for secret in secrets)
    adapter.verify_signature(request, every_secret, request.received_at)
    # Only all secrets together verify it: no single tenant signed it.
    raise SignatureError("signer_unknown", "no single tenant's secrets verify the delivery")


async def _requeue(session: AsyncSession, view: FailureView, now: datetime) -> ReplayResult:
    # The command is stored already: send it again (its idempotency key guards the service),
    # or, when fetching its order failed, fetch again (`posgate.gateway.order_fetch`).
    state = requeue_state(view.failure_class, view.reason, view.provider)
    await session.execute(
        update(commands)
        .where(commands.c.id == view.command_id)
        .values(state=state, attempts=0, next_attempt_at=now, last_error=None)
    )
    await _resolve(session, view.id, now)
    return ReplayResult(view.id, "requeued")


async def _resolve(session: AsyncSession, failure_id: int, now: datetime) -> None:
    await session.execute(
        update(failures).where(failures.c.id == failure_id).values(replayed_at=now, resolved=True)
    )


async def _raw(session: AsyncSession, raw_id: int) -> RawPayload | None:
    row = (await session.execute(select(raw_payloads).where(raw_payloads.c.id == raw_id))).one_or_none()
    if row is None:
        return None
    return RawPayload(
        id=int(row.id),
        provider=row.provider,
        topic=row.topic,
        url=row.url,
        headers={str(k): str(v) for k, v in (row.headers or {}).items()},
        body=bytes(row.body),
        received_at=row.received_at,
        outcome=row.outcome,
        signed_by_tenant=row.signed_by_tenant,
    )


def _view(row: Row[tuple[object, ...]]) -> FailureView:
    values = row._mapping
    return FailureView(
        id=int(values["id"]),
        failure_class=str(values["failure_class"]),
        reason=str(values["reason"]),
        detail=str(values["detail"] or ""),
        provider=str(values["provider"]),
        topic=str(values["topic"] or ""),
        tenant_id=values["tenant_id"],
        store_id=values["store_id"],
        raw_payload_id=values["raw_payload_id"],
        command_id=values["command_id"],
        created_at=values["created_at"],
        replayed_at=values["replayed_at"],
        resolved=bool(values["resolved"]),
    )


def _with_stores(view: FailureView, count: int) -> FailureView:
    return replace(view, affected_stores=count)
