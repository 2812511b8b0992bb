"""Stores a batch's verdicts: raw payloads, de-duplication claims, commands and failures.

Each kind of row is written with one multi-row statement per batch, so a batch of deliveries
costs about as many database round trips as one delivery did. A claim lost to a concurrent
transaction turns its delivery into a duplicate after all; a command whose idempotency key is
stored already is reused, not written twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from posgate.contracts import inventory
from posgate.gateway.dedupe import first_delivery, storable_headers
from posgate.gateway.deliveries import IngestResult, Verdict
from posgate.gateway.mapping_policies import create_missing
from posgate.gateway.tables import (
    CommandState,
    FailureClass,
    Outcome,
    commands,
    dedupe_keys,
    failures,
    raw_payloads,
)

# Services the dispatcher can call today; commands for others wait as `awaiting_service`.
DISPATCHABLE_SERVICES = frozenset({inventory.SERVICE_NAME})


async def store(session: AsyncSession, verdicts: Sequence[Verdict]) -> list[IngestResult]:
    """Write every verdict's rows in `session` (the caller commits); their results."""
    await _store_raw(session, verdicts)
    lost = await _claim(session, [v for v in verdicts if v.outcome == Outcome.ACCEPTED])
    for verdict in lost:
        assert verdict.raw_id is not None and verdict.delivery.key is not None  # noqa: S101 - stored above
        # A concurrent transaction committed the same event first.
        verdict.duplicate_of = await first_delivery(
            session, verdict.delivery.request.provider, verdict.delivery.key
        )
        await _set_raw(session, verdict.raw_id, outcome=Outcome.DUPLICATE)
    accepted = [v for v in verdicts if v.outcome == Outcome.ACCEPTED]
    await create_missing(session, [entry for v in accepted for entry in v.created_mappings], _now(verdicts))
    await _write_commands(session, accepted)
    await _record_failures(session, [v for v in verdicts if v.outcome != Outcome.ACCEPTED])
    return [verdict.result() for verdict in verdicts]


def _now(verdicts: Sequence[Verdict]) -> datetime:
    return max(verdict.delivery.now for verdict in verdicts)


async def first_deliveries(
    session: AsyncSession, slots: Iterable[tuple[str, str] | None]
) -> dict[tuple[str, str], int]:
    """The stored delivery that claimed each (provider, key) first, for those claimed."""
    wanted = sorted({slot for slot in slots if slot is not None})
    if not wanted:
        return {}
    query = select(dedupe_keys.c.provider, dedupe_keys.c.dedupe_key, dedupe_keys.c.raw_payload_id).where(
        tuple_(dedupe_keys.c.provider, dedupe_keys.c.dedupe_key).in_(wanted)
    )
    rows = (await session.execute(query)).all()
    return {(row.provider, row.dedupe_key): int(row.raw_payload_id) for row in rows}


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
    rows = []
    for verdict in new:
        request = verdict.delivery.request
        rows.append(
            {
                "provider": request.provider,
                "topic": request.topic,
                "url": request.url,
                "headers": storable_headers(request.headers),
                "body": request.body,
                "received_at": request.received_at,
                "signed_by_tenant": None,
                **_outcome_values(verdict),
            }
        )
    statement = insert(raw_payloads).returning(raw_payloads.c.id, sort_by_parameter_order=True)
    ids = (await session.execute(statement, rows)).scalars().all()
    for verdict, raw_id in zip(new, ids, strict=True):
        verdict.raw_id = int(raw_id)


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
    # ON CONFLICT waits for a concurrent inserter of the same key and then does nothing.
    statement = (
        _dialect(session)
        .insert(dedupe_keys)
        .on_conflict_do_nothing(index_elements=["provider", "dedupe_key"])
    )
    returned = await session.execute(
        statement.returning(dedupe_keys.c.provider, dedupe_keys.c.dedupe_key), rows
    )
    claimed = {(row.provider, row.dedupe_key) for row in returned}
    # A replay (no de-duplication) runs again on purpose even though its key was claimed before.
    return [v for v in accepted if v.delivery.deduplicate and v.delivery.dedupe_slot not in claimed]


async def _write_commands(session: AsyncSession, accepted: Sequence[Verdict]) -> None:
    rows = [
        _command_row(verdict, command, verdict.delivery.now)
        for verdict in accepted
        for command in verdict.canonical
    ]
    if not rows:
        return
    statement = _dialect(session).insert(commands).on_conflict_do_nothing(index_elements=["idempotency_key"])
    returned = await session.execute(statement.returning(commands.c.id, commands.c.idempotency_key), rows)
    created = {row.idempotency_key: int(row.id) for row in returned}
    existing = await _existing_commands(session, {row["idempotency_key"] for row in rows} - created.keys())
    claimed_here: set[str] = set()
    for verdict in accepted:
        keys = [command.idempotency_key for command in verdict.canonical]
        verdict.command_ids = tuple(created.get(key) or existing[key] for key in keys)
        # A key two deliveries of one batch share was stored once: by the first of them.
        fresh = [key for key in keys if key in created and key not in claimed_here]
        claimed_here.update(fresh)
        verdict.created = tuple(created[key] for key in fresh)


def _command_row(verdict: Verdict, command: Any, now: datetime) -> dict[str, Any]:
    service = command.target.split("/", 1)[0]
    return {
        "raw_payload_id": verdict.raw_id,
        "target": command.target,
        "idempotency_key": command.idempotency_key,
        "tenant_id": command.tenant_id,
        "store_id": command.store_id,
        "body": command.message.SerializeToString(deterministic=True),
        "state": CommandState.PENDING if service in DISPATCHABLE_SERVICES else CommandState.AWAITING_SERVICE,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }


async def _existing_commands(session: AsyncSession, keys: set[str]) -> dict[str, int]:
    if not keys:
        return {}
    query = select(commands.c.id, commands.c.idempotency_key).where(
        commands.c.idempotency_key.in_(sorted(keys))
    )
    return {row.idempotency_key: int(row.id) for row in await session.execute(query)}


async def _record_failures(session: AsyncSession, verdicts: Sequence[Verdict]) -> None:
    if not verdicts:
        return
    rows = [_failure_of(verdict) for verdict in verdicts]
    statement = insert(failures).returning(failures.c.id, sort_by_parameter_order=True)
    ids = (await session.execute(statement, rows)).scalars().all()
    for verdict, failure_id in zip(verdicts, ids, strict=True):
        verdict.failure_id = int(failure_id)


def _failure_of(verdict: Verdict) -> dict[str, Any]:
    request = verdict.delivery.request
    if verdict.error is None:
        return failure_row(
            failure_class=FailureClass.DUPLICATE,
            reason="duplicate_delivery",
            detail=f"first accepted as raw payload {verdict.duplicate_of}",
            provider=request.provider,
            topic=request.topic,
            raw_payload_id=verdict.raw_id,
            now=verdict.delivery.now,
            resolved=True,
        )
    return failure_row(
        failure_class=verdict.error.failure_class,
        reason=verdict.error.reason,
        detail=verdict.error.detail,
        provider=request.provider,
        topic=request.topic,
        raw_payload_id=verdict.raw_id,
        now=verdict.delivery.now,
        tenant_id=verdict.tenant,
    )


def failure_row(
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
) -> dict[str, Any]:
    """The values of one `gw_failures` row."""
    return {
        "raw_payload_id": raw_payload_id,
        "command_id": command_id,
        "failure_class": failure_class,
        "reason": reason[:128],
        "detail": detail,
        "provider": provider,
        "topic": topic,
        "tenant_id": tenant_id,
        "store_id": store_id,
        "created_at": now,
        "resolved": resolved,
    }


async def record_failure(session: AsyncSession, **values: Any) -> int:
    """Insert one failure row (keyword arguments of `failure_row`; the caller commits); its id."""
    statement = insert(failures).values(failure_row(**values)).returning(failures.c.id)
    return int((await session.execute(statement)).scalar_one())


async def _set_raw(session: AsyncSession, raw_id: int, **values: object) -> None:
    await session.execute(update(raw_payloads).where(raw_payloads.c.id == raw_id).values(**values))


def _dialect(session: AsyncSession) -> Any:
    return postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
