"""Rows of `gw_failures`: one per failed or duplicate delivery, and per failed command."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from posgate.gateway.claims import Claimed
from posgate.gateway.deliveries import Verdict
from posgate.gateway.tables import FailureClass, failures


async def record_failures(session: AsyncSession, verdicts: Sequence[Verdict]) -> None:
    """Record the failure (or duplicate) of each verdict, in one statement."""
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


async def record_command_failure(
    session: AsyncSession, command: Claimed, *, failure_class: str, reason: str, detail: str, now: datetime
) -> int:
    """Record the failure of a stored command (sending or completing it), with its delivery's context."""
    return await record_failure(
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
