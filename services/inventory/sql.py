"""Dialect-aware statements the inventory store shares (upserts differ per backend)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from posgate.db.bulk import is_postgres

# Row locks (`FOR UPDATE`, `SKIP LOCKED`) exist on PostgreSQL only; callers ask `is_postgres`.
__all__ = ["is_postgres", "upsert"]


def upsert(session: AsyncSession, table: Table) -> Any:
    """An INSERT supporting `on_conflict_do_update/nothing` for the session's backend."""
    if is_postgres(session):
        return postgresql.insert(table)
    return sqlite.insert(table)
