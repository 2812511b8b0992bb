"""Bulk writes: one statement per table and batch, built once, whatever the batch size.

On PostgreSQL `INSERT ... SELECT * FROM unnest(:a, :b, ...)` binds each column as one array:
one SQL text (one prepared statement with a cached plan, one round trip), the arrays encoded
by asyncpg, which runs it directly (`posgate.db.raw`): nothing in it needs SQLAlchemy's
parameter or result processing. A multi-row `VALUES` list is a new
statement for every batch size instead, planned afresh at each bind. A function scan returns
the array elements in order, so an insert handles its rows in the order given. SQLite
(`posgate dev`) takes the same rows through the equivalent SQLAlchemy statement, one
parameter set per row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, cast

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Executable,
    Integer,
    LargeBinary,
    Table,
    TextClause,
    text,
)
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from posgate.db import raw
from posgate.db.raw import PositionalSql

Arrays = Mapping[str, Sequence[object]]
"""Column name -> one value per row."""


@dataclass(frozen=True)
class Statement:
    """One bulk write: the PostgreSQL `unnest` form and the plain form for other backends."""

    postgres: TextClause
    other: Executable

    @cached_property
    def positional(self) -> PositionalSql:
        """The PostgreSQL form as asyncpg takes it (`posgate.db.raw`)."""
        return PositionalSql.of(self.postgres)


def is_postgres(session: AsyncSession) -> bool:
    """Whether `session` talks to PostgreSQL (which takes the `unnest` forms)."""
    return bool(session.get_bind().dialect.name == "postgresql")


def _array_type(column: Column[Any]) -> str:
    kind = getattr(column.type, "impl", column.type)
    if isinstance(kind, DateTime):
        return "timestamptz[]"
    if isinstance(kind, Boolean):
        return "boolean[]"
    if isinstance(kind, Integer):
        return "bigint[]"
    if isinstance(kind, LargeBinary):
        return "bytea[]"
    if isinstance(kind, JSON):
        return "json[]"  # elements bound as JSON text
    return "text[]"


def unnest_insert(table: Table, columns: Sequence[str], suffix: str = "", *, prefix: str = "") -> TextClause:
    """`INSERT INTO table (columns) SELECT * FROM unnest(...) <suffix>`, one array per column.

    Each column's array is bound as `:<prefix><column>`.
    """
    arrays = ", ".join(f"CAST(:{prefix}{name} AS {_array_type(table.c[name])})" for name in columns)
    names = ", ".join(columns)
    # Table and column names come from our own table definitions, never from input.
    return text(f"INSERT INTO {table.name} ({names}) SELECT * FROM unnest({arrays}) {suffix}")  # noqa: S608


async def write(session: AsyncSession, statement: Statement, arrays: Arrays) -> Sequence[Sequence[Any]]:
    """Write the rows given column-wise; return the rows the statement returned (if any)."""
    if is_postgres(session):
        return await raw.fetch(session, statement.positional, arrays)
    names = list(arrays)
    rows = [dict(zip(names, values, strict=True)) for values in zip(*arrays.values(), strict=True)]
    if not rows:
        return []
    result = await session.execute(statement.other, rows)
    return result.all() if cast(CursorResult[Any], result).returns_rows else []
