"""Dialect-aware statements the inventory store shares (upserts differ per backend)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


def upsert(session: AsyncSession, table: Table) -> Any:
    """An INSERT supporting `on_conflict_do_update/nothing` for the session's backend."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def is_postgres(session: AsyncSession) -> bool:
    """Whether row locks (`FOR UPDATE`, `SKIP LOCKED`) exist on this backend."""
    return bool(session.get_bind().dialect.name == "postgresql")
