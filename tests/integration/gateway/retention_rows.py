"""Rows of the gateway's tables written directly at chosen times, for the retention tests."""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import count as counter

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from posgate.gateway.audit import audit
from posgate.gateway.imports.tables import JobState, import_jobs
from posgate.gateway.tables import (
    CommandState,
    FailureClass,
    commands,
    dedupe_keys,
    failures,
    raw_payloads,
)

TARGET = "posgate.inventory.v1.InventoryService/ApplyMovements"
_keys = counter(1)


async def raw(sessions: async_sessionmaker[AsyncSession], at: datetime, outcome: str = "accepted") -> int:
    async with sessions.begin() as session:
        statement = insert(raw_payloads).values(
            provider="standard",
            topic="inventory",
            url="https://gw.example/webhooks",
            headers={},
            body=b"{}",
            received_at=at,
            outcome=outcome,
        )
        return int((await session.execute(statement.returning(raw_payloads.c.id))).scalar_one())


async def command(
    sessions: async_sessionmaker[AsyncSession],
    raw_id: int,
    state: str,
    at: datetime,
    *,
    next_attempt_at: datetime | None = None,
    dispatched_at: datetime | None = None,
) -> int:
    async with sessions.begin() as session:
        statement = insert(commands).values(
            raw_payload_id=raw_id,
            target=TARGET,
            idempotency_key=f"key-{next(_keys)}",
            tenant_id="tenant-acme",
            store_id="store-berlin",
            body=b"",
            state=state,
            attempts=1,
            next_attempt_at=next_attempt_at or at,
            created_at=at,
            dispatched_at=dispatched_at,
        )
        return int((await session.execute(statement.returning(commands.c.id))).scalar_one())


async def dispatched(sessions: async_sessionmaker[AsyncSession], at: datetime) -> tuple[int, int]:
    """A delivery and its command, sent at once: (raw payload id, command id)."""
    raw_id = await raw(sessions, at)
    return raw_id, await command(sessions, raw_id, CommandState.DISPATCHED, at, dispatched_at=at)


async def failure(
    sessions: async_sessionmaker[AsyncSession],
    at: datetime,
    *,
    raw_id: int | None = None,
    command_id: int | None = None,
    resolved: bool = False,
    replayed_at: datetime | None = None,
    failure_class: str = FailureClass.PROCESSING,
) -> int:
    async with sessions.begin() as session:
        statement = insert(failures).values(
            raw_payload_id=raw_id,
            command_id=command_id,
            failure_class=failure_class,
            reason="attempts_exhausted",
            detail="",
            provider="standard",
            topic="inventory",
            created_at=at,
            replayed_at=replayed_at,
            resolved=resolved,
        )
        return int((await session.execute(statement.returning(failures.c.id))).scalar_one())


async def dedupe_key(sessions: async_sessionmaker[AsyncSession], key: str, at: datetime) -> None:
    async with sessions.begin() as session:
        await session.execute(
            insert(dedupe_keys).values(provider="standard", dedupe_key=key, raw_payload_id=0, created_at=at)
        )


async def audit_row(sessions: async_sessionmaker[AsyncSession], at: datetime) -> None:
    async with sessions.begin() as session:
        await session.execute(
            insert(audit).values(
                occurred_at=at, provider="x", topic="y", status=404, reason="unknown_provider", client="c"
            )
        )


async def import_job(sessions: async_sessionmaker[AsyncSession], raw_id: int, at: datetime) -> None:
    async with sessions.begin() as session:
        await session.execute(
            insert(import_jobs).values(
                provider="standard",
                tenant_id="tenant-acme",
                merchant_id="acme",
                format="csv",
                state=JobState.COMPLETED,
                raw_payload_id=raw_id,
                created_at=at,
                finished_at=at,
            )
        )


async def ids(sessions: async_sessionmaker[AsyncSession], column) -> set:
    async with sessions() as session:
        return set((await session.execute(select(column))).scalars().all())


def days(n: float) -> timedelta:
    return timedelta(days=n)
