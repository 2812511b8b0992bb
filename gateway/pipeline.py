"""The gateway's synchronous path: verify, store, de-duplicate, map, transform, write commands.

`ingest` does all of it in one transaction, so a delivery is either stored with its outcome
(accepted with its commands, duplicate, or failed with a class and reason) or not at all (the
caller answers 5xx and the vendor retries). Dispatch to the services happens later, from the
stored commands (`posgate.gateway.dispatch`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from google.protobuf.message import Message
from sqlalchemy import insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from posgate.bus.retry import describe_error
from posgate.contracts import inventory
from posgate.contracts.common import timestamp
from posgate.gateway import profiles
from posgate.gateway.adapters.base import (
    Adapter,
    AdapterError,
    CanonicalCommand,
    InboundRequest,
    MappingLookup,
    PayloadError,
    SignatureError,
    VendorEvent,
)
from posgate.gateway.adapters.registry import ADAPTERS
from posgate.gateway.dedupe import claim, dedupe_key, first_delivery, storable_headers
from posgate.gateway.mappings import snapshot
from posgate.gateway.tables import (
    CommandState,
    FailureClass,
    Outcome,
    commands,
    failures,
    raw_payloads,
)

# Services the dispatcher can call today; commands for others wait as `awaiting_service`.
DISPATCHABLE_SERVICES = frozenset({inventory.SERVICE_NAME})


class UnknownProvider(LookupError):
    """No adapter is registered under the request's provider name."""


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What became of one delivery.

    Attributes:
        outcome: `accepted`, `duplicate` or `failed`.
        raw_payload_id: The stored delivery.
        command_ids: The event's commands (accepted only).
        failure_class: `auth`, `mapping`, `validation`, `processing` (failed) or `duplicate`.
        reason: Stable snake_case reason of the failure or duplicate; never contains secrets.
        failure_id: The failure row recorded for it, if any.
        new_command_ids: Those of `command_ids` this call stored (others existed already).

    """

    outcome: str
    raw_payload_id: int
    command_ids: tuple[int, ...] = ()
    failure_class: str | None = None
    reason: str = ""
    failure_id: int | None = None
    new_command_ids: tuple[int, ...] = ()


async def ingest(
    sessions: async_sessionmaker[AsyncSession],
    request: InboundRequest,
    secrets: Sequence[bytes],
    now: datetime,
    *,
    adapters: Mapping[str, Adapter] = ADAPTERS,
    tenant: str | None = None,
) -> IngestResult:
    """Run one delivery through the synchronous path and commit its outcome.

    `tenant` is the tenant whose credential signed the delivery (`secrets` are then that
    credential's): commands for any other tenant are refused as an auth failure
    `tenant_mismatch`, so one tenant's secret can never write another tenant's stock. None
    means no single tenant's credential verified it: a delivery that still verifies (a secret
    shared between tenants) is refused as `ambiguous_signer`.

    Raises:
        UnknownProvider: No adapter named `request.provider`.

    """
    adapter = adapters.get(request.provider)
    if adapter is None:
        raise UnknownProvider(request.provider)
    async with sessions() as session:
        raw_id = await store_raw(session, request)
        try:
            adapter.verify_signature(request, secrets, now)
        except AdapterError as error:
            result = await fail(session, raw_id, request, error, now)
        else:
            if tenant is None:
                # Verified, yet by no single tenant's credential (a secret shared between
                # tenants): writing for any of them would be a guess.
                refusal = SignatureError("ambiguous_signer", "no single tenant's credential signed it")
                result = await fail(session, raw_id, request, refusal, now)
            else:
                result = await process(
                    session, adapter, request, raw_id, now, deduplicate=True, signed_by=tenant
                )
        await session.commit()
    return result


async def store_raw(session: AsyncSession, request: InboundRequest) -> int:
    """Store the delivery as received, minus credential headers; returns its id."""
    statement = insert(raw_payloads).values(
        provider=request.provider,
        topic=request.topic,
        url=request.url,
        headers=storable_headers(request.headers),
        body=request.body,
        received_at=request.received_at,
        outcome=Outcome.RECEIVED,
    )
    return int((await session.execute(statement.returning(raw_payloads.c.id))).scalar_one())


async def process(
    session: AsyncSession,
    adapter: Adapter,
    request: InboundRequest,
    raw_id: int,
    now: datetime,
    *,
    deduplicate: bool,
    signed_by: str | None = None,
) -> IngestResult:
    """Parse, de-duplicate (unless replaying), map, transform, validate and write commands.

    With `signed_by`, every command must be for that tenant (see `ingest`), and the raw payload
    records it, so that a replay is held to the same tenant.
    """
    tenant: str | None = None
    if signed_by is not None:
        await _set_raw(session, raw_id, signed_by_tenant=signed_by)
    try:
        if request.topic not in adapter.topics:
            raise PayloadError("unsupported_topic", f"{request.provider} does not post to {request.topic}")
        event = adapter.parse(request)
        key = dedupe_key(request.provider, event.identity, request.body)
        merchant = event.identity.merchant_id
        await _set_raw(session, raw_id, dedupe_key=key, merchant_id=merchant)
        if deduplicate and await first_delivery(session, request.provider, key) is not None:
            return await _duplicate(session, raw_id, request, key, now)
        mapping = await snapshot(session, request.provider, merchant)
        tenant = mapping.tenant(request.provider, merchant)
        # Checked before the transform too, so a foreign delivery is never merely held for a
        # missing SKU mapping (and later replayed without its signer).
        _check_tenant(signed_by, tenant, ())
        canonical = _transform(adapter, event, mapping)
        # The account's validation profile decides which adapter warnings refuse a delivery.
        canonical = await profiles.screen(session, request.provider, tenant, canonical)
        _check_tenant(signed_by, tenant, canonical)
    except AdapterError as error:
        return await fail(session, raw_id, request, error, now, tenant_id=tenant)
    claimed = await claim(session, request.provider, key, raw_id, now)
    if deduplicate and not claimed:
        # A concurrent delivery of the same event committed first.
        return await _duplicate(session, raw_id, request, key, now)
    written = await write_commands(session, raw_id, canonical, now, request.received_at)
    stores = {command.store_id for command in canonical}
    await _set_raw(
        session,
        raw_id,
        outcome=Outcome.ACCEPTED,
        tenant_id=tenant,
        store_id=stores.pop() if len(stores) == 1 else None,
    )
    ids = tuple(command_id for command_id, _ in written)
    created = tuple(command_id for command_id, new in written if new)
    return IngestResult(Outcome.ACCEPTED, raw_id, ids, new_command_ids=created)


def _check_tenant(signed_by: str | None, mapped: str | None, canonical: Sequence[CanonicalCommand]) -> None:
    if signed_by is None:
        return
    foreign = {mapped} | {command.tenant_id for command in canonical}
    foreign.discard(None)
    foreign.discard(signed_by)
    if foreign:
        # The reason names no tenant: the caller must not learn which tenant a merchant is mapped to.
        raise SignatureError("tenant_mismatch", f"signed by tenant {signed_by}, addressed to another tenant")


def _transform(adapter: Adapter, event: VendorEvent, mapping: MappingLookup) -> list[CanonicalCommand]:
    try:
        canonical = adapter.to_canonical_commands(event, mapping)
    except AdapterError:
        raise
    except ValueError as error:
        raise PayloadError("invalid_command", str(error)) from None
    except Exception as error:
        # A bug in an adapter must not lose the delivery: record it as a processing failure.
        raise AdapterError("transform_crashed", describe_error(error)) from None
    for command in canonical:
        if not (command.idempotency_key and command.tenant_id and "/" in command.target):
            raise PayloadError("invalid_command", f"{command.target or 'command'} lacks key or tenant")
    return canonical


async def write_commands(
    session: AsyncSession,
    raw_id: int,
    canonical: Sequence[CanonicalCommand],
    now: datetime,
    received_at: datetime,
) -> list[tuple[int, bool]]:
    """Store each command unless its idempotency key is stored already: (id, created) each."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    written: list[tuple[int, bool]] = []
    for command in canonical:
        _stamp_received_at(command.message, received_at)
        service = command.target.split("/", 1)[0]
        state = CommandState.PENDING if service in DISPATCHABLE_SERVICES else CommandState.AWAITING_SERVICE
        statement = dialect.insert(commands).values(
            raw_payload_id=raw_id,
            target=command.target,
            idempotency_key=command.idempotency_key,
            tenant_id=command.tenant_id,
            store_id=command.store_id,
            body=command.message.SerializeToString(deterministic=True),
            state=state,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
        statement = statement.on_conflict_do_nothing(index_elements=["idempotency_key"])
        created = (await session.execute(statement.returning(commands.c.id))).scalar_one_or_none()
        if created is None:
            existing = select(commands.c.id).where(commands.c.idempotency_key == command.idempotency_key)
            written.append((int((await session.execute(existing)).scalar_one()), False))
        else:
            written.append((int(created), True))
    return written


def _stamp_received_at(message: Message, received_at: datetime) -> None:
    # Adapters are pure and leave `Source.received_at` to the pipeline (see `Origin`).
    if "meta" not in message.DESCRIPTOR.fields_by_name:
        return
    source = message.meta.source  # type: ignore[attr-defined]
    if not source.HasField("received_at"):
        source.received_at.CopyFrom(timestamp(received_at))


async def fail(
    session: AsyncSession,
    raw_id: int,
    request: InboundRequest,
    error: AdapterError,
    now: datetime,
    *,
    tenant_id: str | None = None,
) -> IngestResult:
    """Mark the delivery failed and record a failure of the error's class."""
    await _set_raw(session, raw_id, outcome=Outcome.FAILED, tenant_id=tenant_id)
    failure_id = await record_failure(
        session,
        failure_class=error.failure_class,
        reason=error.reason,
        detail=error.detail,
        provider=request.provider,
        topic=request.topic,
        raw_payload_id=raw_id,
        now=now,
        tenant_id=tenant_id,
    )
    return IngestResult(Outcome.FAILED, raw_id, (), error.failure_class, error.reason, failure_id)


async def _duplicate(
    session: AsyncSession, raw_id: int, request: InboundRequest, key: str, now: datetime
) -> IngestResult:
    first = await first_delivery(session, request.provider, key)
    await _set_raw(session, raw_id, outcome=Outcome.DUPLICATE)
    failure_id = await record_failure(
        session,
        failure_class=FailureClass.DUPLICATE,
        reason="duplicate_delivery",
        detail=f"first accepted as raw payload {first}",
        provider=request.provider,
        topic=request.topic,
        raw_payload_id=raw_id,
        now=now,
        resolved=True,
    )
    return IngestResult(
        Outcome.DUPLICATE, raw_id, (), FailureClass.DUPLICATE, "duplicate_delivery", failure_id
    )


async def record_failure(
    session: AsyncSession,
    *,
    failure_class: str,
    reason: str,
    detail: str,
    provider: str,
    topic: str,
    raw_payload_id: int | None,
    now: datetime,
    command_id: int | None = None,
    tenant_id: str | None = None,
    store_id: str | None = None,
    resolved: bool = False,
) -> int:
    """Insert a failure row (the caller commits); returns its id."""
    statement = insert(failures).values(
        raw_payload_id=raw_payload_id,
        command_id=command_id,
        failure_class=failure_class,
        reason=reason[:128],
        detail=detail,
        provider=provider,
        topic=topic,
        tenant_id=tenant_id,
        store_id=store_id,
        created_at=now,
        resolved=resolved,
    )
    return int((await session.execute(statement.returning(failures.c.id))).scalar_one())


async def _set_raw(session: AsyncSession, raw_id: int, **values: object) -> None:
    await session.execute(update(raw_payloads).where(raw_payloads.c.id == raw_id).values(**values))
