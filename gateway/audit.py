"""Audit rows for webhook requests refused before a delivery was stored.

Accepted, duplicate and failed deliveries are recorded by their raw payload row (and a
failure row); requests refused at the door (unknown endpoint, body too large, rate limited,
address not allowed) never get that far, so each leaves one `gw_audit` row instead: who
called what, when, the HTTP status and a stable reason. Bodies and headers are not kept
(they may be huge or hostile); the client address is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Column, Index, Integer, String, Table, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from posgate.db.tables import Id, UtcDateTime, metadata

audit = Table(
    "gw_audit",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("provider", String(64), nullable=False),
    Column("topic", String(64), nullable=False),
    Column("status", Integer, nullable=False),
    Column("reason", String(64), nullable=False),
    Column("client", String(64), nullable=False),
)
Index("ix_gw_audit_provider_occurred", audit.c.provider, audit.c.occurred_at)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One refused request.

    Attributes:
        occurred_at: When it was refused (UTC).
        provider: The provider named in the URL (truncated; may be unknown).
        topic: The topic named in the URL (truncated; may be unknown).
        status: The HTTP status answered.
        reason: Stable snake_case reason (`unknown_provider`, `rate_limited`, ...).
        client: The peer address.

    """

    occurred_at: datetime
    provider: str
    topic: str
    status: int
    reason: str
    client: str


async def record(sessions: async_sessionmaker[AsyncSession], entry: AuditEntry) -> None:
    """Insert and commit one audit row (its own short transaction)."""
    async with sessions() as session:
        await session.execute(
            insert(audit).values(
                occurred_at=entry.occurred_at,
                provider=entry.provider[:64],
                topic=entry.topic[:64],
                status=entry.status,
                reason=entry.reason[:64],
                client=entry.client[:64],
            )
        )
        await session.commit()


async def list_entries(
    session: AsyncSession, provider: str | None = None, limit: int = 100
) -> list[AuditEntry]:
    """The most recent audit rows, optionally of one provider."""
    query = select(audit).order_by(audit.c.id.desc()).limit(limit)
    if provider is not None:
        query = query.where(audit.c.provider == provider)
    rows = (await session.execute(query)).all()
    return [
        AuditEntry(row.occurred_at, row.provider, row.topic, row.status, row.reason, row.client)
        for row in rows
    ]
