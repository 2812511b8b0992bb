"""Stores a batch's verdicts: raw payloads, de-duplication claims, commands and failures.

Each kind of row is written with one multi-row statement per batch
(`posgate.gateway.ingest_sql`), so a batch of deliveries costs about as many database round
trips as one delivery did. A claim lost to a concurrent transaction turns its delivery into a
duplicate after all; a command whose idempotency key is stored already is reused, not written
twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from posgate.contracts import inventory
from posgate.db import bulk, raw
from posgate.db.bulk import is_postgres
from posgate.gateway import ingest_new, ingest_sql
from posgate.gateway.adapters.base import CanonicalCommand
from posgate.gateway.claims import Claimed
from posgate.gateway.dedupe import first_delivery, storable_headers
from posgate.gateway.deliveries import IngestResult, Verdict
from posgate.gateway.failure_rows import record_failures
from posgate.gateway.mapping_policies import create_missing
from posgate.gateway.tables import (
    CommandState,
    Outcome,
    raw_payloads,
)

Versions = Mapping[tuple[str, str], int] | None
"""Mapping versions a batch was decided under (`MappingCache.cached`), or None: read with it."""

# Services the dispatcher can call today; commands for others wait as `awaiting_service`.
DISPATCHABLE_SERVICES = frozenset({inventory.SERVICE_NAME})


async def store(
    session: AsyncSession, verdicts: Sequence[Verdict], *, leased_until: datetime | None = None
) -> list[IngestResult]:
    """Write every verdict's rows in `session` (the caller commits); their results.

    With `leased_until`, new dispatchable commands are stored leased to the caller's
    dispatcher until then (first send counted), for it to send them unclaimed (`leased`).

    In a `posgate.db.raw.transaction(begin=False)` block nothing has begun in, a batch of new
    accepted deliveries is stored by one statement that commits alone (`ingest_new`); any other
    batch begins the block's transaction first.
    """
    if raw.autocommits(session):
        if ingest_new.eligible(verdicts) and await _store_new(session, verdicts, leased_until):
            return [verdict.result() for verdict in verdicts]
        await raw.begin_now(session)
    await _store_raw(session, verdicts)
    lost = await _claim(session, [v for v in verdicts if v.outcome == Outcome.ACCEPTED])
    for verdict in lost:
        assert verdict.raw_id is not None  # noqa: S101 - stored above
        # A concurrent transaction committed the same event first.
        verdict.duplicate_of = await _first_delivery_of(session, verdict)
        await _set_raw(session, verdict.raw_id, outcome=Outcome.DUPLICATE)
    accepted = [v for v in verdicts if v.outcome == Outcome.ACCEPTED]
    await create_missing(session, [entry for v in accepted for entry in v.created_mappings], _now(verdicts))
    await _write_commands(session, accepted, leased_until)
    await record_failures(session, [v for v in verdicts if v.outcome != Outcome.ACCEPTED])
    return [verdict.result() for verdict in verdicts]


async def store_cached(
    session: AsyncSession,
    verdicts: Sequence[Verdict],
    assumed: Versions,
    *,
    leased_until: datetime | None = None,
) -> list[IngestResult] | None:
    """Store verdicts of `pipeline.decide_cached` in one statement, or nothing (None, decide afresh).

    Only a batch `ingest_new.eligible`, on PostgreSQL, in a deferred block nothing has begun
    in, whose `assumed` mapping versions are still the stored ones.
    """
    if not (is_postgres(session) and raw.autocommits(session) and ingest_new.eligible(verdicts)):
        return None
    if not await _store_new(session, verdicts, leased_until, assumed):
        return None
    return [verdict.result() for verdict in verdicts]


async def _store_new(
    session: AsyncSession,
    verdicts: Sequence[Verdict],
    leased_until: datetime | None,
    assumed: Versions = None,
) -> bool:
    commands = [
        {**_command_row(verdict, command, leased_until), "delivery": position}
        for position, verdict in enumerate(verdicts, start=1)
        for command in verdict.canonical
    ]
    commands.sort(key=lambda row: str(row["idempotency_key"]))
    written = await ingest_new.write(session, [_new_raw_row(v) for v in verdicts], commands, assumed)
    if written is None:
        return False
    lost = []
    for verdict, raw_id, was_lost in zip(verdicts, written.raw_ids, written.lost, strict=True):
        verdict.raw_id = raw_id
        if was_lost:
            lost.append(verdict)
            # A concurrent transaction committed the same event first; its claim is visible now.
            verdict.duplicate_of = await _first_delivery_of(session, verdict)
    accepted = [v for v in verdicts if v.outcome == Outcome.ACCEPTED]
    await _assign_commands(session, accepted, written.created)
    await record_failures(session, lost)
    return True


def _now(verdicts: Sequence[Verdict]) -> datetime:
    return max(verdict.delivery.now for verdict in verdicts)


def _outcome_values(verdict: Verdict) -> dict[str, Any]:
    delivery = verdict.delivery
    values: dict[str, Any] = {
        "outcome": verdict.outcome,
        "merchant_id": delivery.merchant,
        "dedupe_key": delivery.key,
        "tenant_id": verdict.tenant,
        "store_id": verdict.store_id if verdict.outcome == Outcome.ACCEPTED else None,
    }
    if delivery.signed_by is not None:
        # Recorded so that a replay is held to the same tenant.
        values["signed_by_tenant"] = delivery.signed_by
    return values


async def _store_raw(session: AsyncSession, verdicts: Sequence[Verdict]) -> None:
    new = [v for v in verdicts if v.raw_id is None]
    for verdict in verdicts:
        if verdict.raw_id is not None:
            # A replay: the row is the delivery as first received; only its outcome changes.
            await _set_raw(session, verdict.raw_id, **_outcome_values(verdict))
    if not new:
        return
    rows = [_raw_row(verdict) for verdict in new]
    returned = await bulk.write(session, ingest_sql.INSERT_RAW, ingest_sql.raw_arrays(session, rows))
    for verdict, raw_id in zip(new, sorted(int(row[0]) for row in returned), strict=True):
        verdict.raw_id = raw_id


def _raw_row(verdict: Verdict) -> dict[str, Any]:
    request = verdict.delivery.request
    return {
        "provider": request.provider,
        "topic": request.topic,
        "url": request.url,
        "headers": storable_headers(request.headers),
        "body": request.body,
        "received_at": request.received_at,
        "signed_by_tenant": None,
        **_outcome_values(verdict),
    }


def _new_raw_row(verdict: Verdict) -> dict[str, Any]:
    """A raw row for `ingest_new`, with its claim's flag and time."""
    delivery = verdict.delivery
    return {**_raw_row(verdict), "deduplicate": delivery.deduplicate, "claimed_at": delivery.now}


async def _first_delivery_of(session: AsyncSession, verdict: Verdict) -> int | None:
    assert verdict.delivery.key is not None  # noqa: S101 - accepted deliveries have keys
    return await first_delivery(session, verdict.delivery.request.provider, verdict.delivery.key)


async def _claim(session: AsyncSession, accepted: Sequence[Verdict]) -> list[Verdict]:
    """Claim the accepted deliveries' keys; those of de-duplicating deliveries that lost one."""
    if not accepted:
        return []
    rows = [
        {
            "provider": v.delivery.request.provider,
            "dedupe_key": v.delivery.key,
            "raw_payload_id": v.raw_id,
            "created_at": v.delivery.now,
        }
        for v in accepted
    ]
    # Sorted: concurrent batches (ingest lanes, other processes) lock keys in one order, so
    # they wait for each other instead of deadlocking. ON CONFLICT waits for a concurrent
    # inserter of the same key and then does nothing.
    rows.sort(key=lambda row: (row["provider"], row["dedupe_key"]))
    returned = await bulk.write(
        session, ingest_sql.CLAIM_KEYS, ingest_sql.columns(rows, ingest_sql.CLAIM_COLUMNS)
    )
    claimed = {(str(row[0]), str(row[1])) for row in returned}
    # A replay (no de-duplication) runs again on purpose even though its key was claimed before.
    return [v for v in accepted if v.delivery.deduplicate and v.delivery.dedupe_slot not in claimed]


async def _write_commands(
    session: AsyncSession, accepted: Sequence[Verdict], leased_until: datetime | None
) -> None:
    rows = [
        _command_row(verdict, command, leased_until) for verdict in accepted for command in verdict.canonical
    ]
    if not rows:
        return
    rows.sort(key=lambda row: str(row["idempotency_key"]))  # one lock order, as for claims
    returned = await bulk.write(
        session, ingest_sql.INSERT_COMMANDS, ingest_sql.columns(rows, ingest_sql.COMMAND_COLUMNS)
    )
    await _assign_commands(session, accepted, {str(row[1]): int(row[0]) for row in returned})


async def _assign_commands(
    session: AsyncSession, accepted: Sequence[Verdict], created: dict[str, int]
) -> None:
    """Each accepted verdict's command ids, and those of them its batch stored (`created`)."""
    wanted = {command.idempotency_key for verdict in accepted for command in verdict.canonical}
    existing = await ingest_sql.existing_commands(session, wanted - created.keys())
    claimed_here: set[str] = set()
    for verdict in accepted:
        keys = [command.idempotency_key for command in verdict.canonical]
        verdict.command_ids = tuple(created.get(key) or existing[key] for key in keys)
        # A key two deliveries of one batch share was stored once: by the first of them.
        fresh = [key for key in keys if key in created and key not in claimed_here]
        claimed_here.update(fresh)
        verdict.created = tuple(created[key] for key in fresh)


def _command_row(
    verdict: Verdict, command: CanonicalCommand, leased_until: datetime | None
) -> dict[str, Any]:
    now = verdict.delivery.now
    row = {
        "raw_payload_id": verdict.raw_id,
        "target": command.target,
        "idempotency_key": command.idempotency_key,
        "tenant_id": command.tenant_id,
        "store_id": command.store_id,
        "body": command.message.SerializeToString(deterministic=True),
        "state": CommandState.AWAITING_SERVICE,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }
    if command.fetch:
        # Completed by the fetcher first (`posgate.gateway.command_fetch`); never dispatched as it is.
        row["state"] = CommandState.AWAITING_FETCH
    elif _dispatchable(command):
        row["state"] = CommandState.PENDING
        if leased_until is not None:
            row.update(attempts=1, next_attempt_at=leased_until)
    return row


def _dispatchable(command: CanonicalCommand) -> bool:
    return command.target.split("/", 1)[0] in DISPATCHABLE_SERVICES


def leased(verdicts: Sequence[Verdict]) -> list[Claimed]:
    """The dispatchable commands `store(..., leased_until=...)` created, as leased claims."""
    claims = []
    for verdict in verdicts:
        if verdict.outcome != Outcome.ACCEPTED:
            continue  # a claim lost to another delivery keeps its commands, unstored
        created = set(verdict.created)
        request = verdict.delivery.request
        for command, command_id in zip(verdict.canonical, verdict.command_ids, strict=True):
            if command_id not in created or command.fetch or not _dispatchable(command):
                continue
            assert verdict.raw_id is not None  # noqa: S101 - stored with its commands
            claims.append(
                Claimed(
                    id=command_id,
                    target=command.target,
                    body=command.message.SerializeToString(deterministic=True),
                    idempotency_key=command.idempotency_key,
                    attempts=1,
                    tenant_id=command.tenant_id,
                    store_id=command.store_id,
                    raw_payload_id=verdict.raw_id,
                    provider=request.provider,
                    topic=request.topic,
                )
            )
    return claims


async def _set_raw(session: AsyncSession, raw_id: int, **values: object) -> None:
    await session.execute(update(raw_payloads).where(raw_payloads.c.id == raw_id).values(**values))
