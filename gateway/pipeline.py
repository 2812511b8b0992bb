"""The gateway's synchronous path: verify, store, de-duplicate, map, transform, write commands.

`admit` does what needs no database (signature, topic, parse). `run_batch` does the rest for
many deliveries in one transaction, so each is either stored with its outcome (accepted with
its commands, duplicate, or failed with a class and reason) or not at all (the caller answers
5xx and the vendor retries). The HTTP server commits concurrent deliveries together
(`posgate.gateway.ingestor`); `ingest` runs one alone. Dispatch to the services happens later,
from the stored commands (`posgate.gateway.dispatch`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from google.protobuf.message import Message
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from posgate.bus.retry import describe_error
from posgate.contracts.common import stamp_into
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
from posgate.gateway.dedupe import dedupe_key
from posgate.gateway.deliveries import Delivery, IngestResult, Verdict
from posgate.gateway.ingest_sql import look_up_batch
from posgate.gateway.ingest_store import store
from posgate.gateway.mapping_cache import MappingCache
from posgate.gateway.mapping_policies import CreatingLookup
from posgate.gateway.mappings import MappingSnapshot
from posgate.gateway.tables import UnmappedSkuPolicy


class UnknownProvider(LookupError):
    """No adapter is registered under the request's provider name."""


def admit(
    adapter: Adapter,
    request: InboundRequest,
    secrets: Sequence[bytes],
    now: datetime,
    tenant: str | None,
    *,
    verified: bool = False,
) -> Delivery:
    """Verify and parse a new delivery (no database); failures are kept on it, not raised.

    `tenant` is the tenant whose credential signed the delivery (`secrets` are then that
    credential's): commands for any other tenant are later refused as an auth failure
    `tenant_mismatch`, so one tenant's secret can never write another tenant's stock. None
    means no single tenant's credential verified it: a delivery that still verifies (a secret
    shared between tenants) is refused as `ambiguous_signer`. `verified`: the caller has just
    checked the signature against `secrets` at `now` (`security.signing_tenant`), so it is
    not checked again.
    """
    delivery = Delivery(request, adapter, now, signed_by=tenant)
    try:
        if not (verified and tenant is not None):
            adapter.verify_signature(request, secrets, now)
    except AdapterError as error:
        delivery.signed_by = None
        delivery.error = error
        return delivery
    if tenant is None:
        # Verified, yet by no single tenant's credential (a secret shared between tenants):
        # writing for any of them would be a guess.
        delivery.error = SignatureError("ambiguous_signer", "no single tenant's credential signed it")
        return delivery
    parse(delivery)
    return delivery


def parse(delivery: Delivery) -> None:
    """Parse the delivery and derive its de-duplication key, or record why it cannot be."""
    request = delivery.request
    try:
        if request.topic not in delivery.adapter.topics:
            raise PayloadError("unsupported_topic", f"{request.provider} does not post to {request.topic}")
        delivery.event = delivery.adapter.parse(request)
        delivery.key = dedupe_key(request.provider, delivery.event.identity, request.body)
    except AdapterError as error:
        delivery.error = error


async def ingest(
    sessions: async_sessionmaker[AsyncSession],
    request: InboundRequest,
    secrets: Sequence[bytes],
    now: datetime,
    *,
    adapters: Mapping[str, Adapter] = ADAPTERS,
    tenant: str | None = None,
) -> IngestResult:
    """Run one delivery through the synchronous path in its own transaction (see `admit`).

    The HTTP server batches concurrent deliveries instead (`posgate.gateway.ingestor`).

    Raises:
        UnknownProvider: No adapter named `request.provider`.

    """
    adapter = adapters.get(request.provider)
    if adapter is None:
        raise UnknownProvider(request.provider)
    delivery = admit(adapter, request, secrets, now, tenant)
    async with sessions() as session:
        [result] = await run_batch(session, [delivery], MappingCache())
        await session.commit()
    return result


async def run_batch(
    session: AsyncSession, deliveries: Sequence[Delivery], cache: MappingCache
) -> list[IngestResult]:
    """De-duplicate, map, transform, validate and store `deliveries` in `session` (uncommitted).

    No two of `deliveries` may share a de-duplication key (the ingestor puts such a pair in
    separate batches).
    """
    return await store(session, await decide(session, deliveries, cache))


async def decide(session: AsyncSession, deliveries: Sequence[Delivery], cache: MappingCache) -> list[Verdict]:
    """Everything `run_batch` does before storing: duplicates, mappings, commands or failures."""
    verdicts = [Verdict(delivery) for delivery in deliveries]
    parsed = [v for v in verdicts if v.delivery.error is None]
    firsts, versions = await look_up_batch(
        session,
        [v.delivery.dedupe_slot for v in parsed if v.delivery.deduplicate],
        {(v.delivery.request.provider, v.merchant) for v in parsed},
    )
    for verdict in parsed:
        slot = verdict.delivery.dedupe_slot
        if verdict.delivery.deduplicate and slot is not None:
            verdict.duplicate_of = firsts.get(slot)
    fresh = [v for v in parsed if v.duplicate_of is None]
    lookups = await cache.snapshots(
        session, {(v.delivery.request.provider, v.merchant) for v in fresh}, versions
    )
    for verdict in fresh:
        await transform(session, verdict, lookups[(verdict.delivery.request.provider, verdict.merchant)])
    return verdicts


async def decide_cached(
    session: AsyncSession, deliveries: Sequence[Delivery], cache: MappingCache
) -> tuple[list[Verdict], dict[tuple[str, str], int]] | None:
    """`decide` on the cached mappings alone, before any look-up, for a batch stored in one statement.

    Returns the verdicts and the mapping versions they assume, for the write to check
    (`posgate.gateway.ingest_new`). Duplicates are not looked for: the write's claims find them.
    None, having done nothing, unless every delivery parsed and every merchant is cached (a
    batch with a failure is not written by that one statement anyway).
    """
    verdicts = [Verdict(delivery) for delivery in deliveries]
    parsed = [v for v in verdicts if v.delivery.error is None]
    if len(parsed) < len(verdicts):
        return None
    kept = cache.cached((v.delivery.request.provider, v.merchant) for v in parsed)
    if kept is None:
        return None
    snapshots, versions = kept
    for verdict in parsed:
        await transform(session, verdict, snapshots[(verdict.delivery.request.provider, verdict.merchant)])
    return verdicts, versions


async def transform(session: AsyncSession, verdict: Verdict, mapping: MappingSnapshot) -> None:
    """Map, transform and validate one parsed delivery; failures are kept on the verdict."""
    delivery = verdict.delivery
    provider = delivery.request.provider
    assert delivery.event is not None  # noqa: S101 - only parsed deliveries reach here
    try:
        verdict.tenant = mapping.tenant(provider, verdict.merchant)
        # Checked before the transform too, so a foreign delivery is never merely held for a
        # missing SKU mapping (and later replayed without its signer).
        _check_tenant(delivery.signed_by, verdict.tenant, ())
        lookup = CreatingLookup(mapping) if mapping.unmapped_sku == UnmappedSkuPolicy.CREATE else mapping
        canonical = _transform(delivery.adapter, delivery.event, lookup)
        # The account's validation profile decides which adapter warnings refuse a delivery.
        canonical = await profiles.screen(session, provider, verdict.tenant, canonical)
        _check_tenant(delivery.signed_by, verdict.tenant, canonical)
    except AdapterError as error:
        verdict.error = error
        return
    for command in canonical:
        _stamp_received_at(command.message, delivery.request.received_at)
    verdict.canonical = canonical
    if isinstance(lookup, CreatingLookup):
        verdict.created_mappings = lookup.created


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


def _stamp_received_at(message: Message, received_at: datetime) -> None:
    # Adapters are pure and leave `Source.received_at` to the pipeline (see `Origin`).
    if "meta" not in message.DESCRIPTOR.fields_by_name:
        return
    source = message.meta.source  # type: ignore[attr-defined]
    if not source.HasField("received_at"):
        stamp_into(source.received_at, received_at)
