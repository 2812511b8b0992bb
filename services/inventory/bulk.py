"""Bulk writes: one statement per table and batch, built once, whatever the batch size.

On PostgreSQL `INSERT ... SELECT * FROM unnest(:a, :b, ...)` binds each column as one array:
one SQL text (one prepared statement, one round trip), no per-row parameter processing in
SQLAlchemy, the arrays encoded by asyncpg. A function scan returns the array elements in
order, so an upsert locks its rows in the order given (see `journal`). SQLite (`posgate dev`)
takes the same rows through the equivalent SQLAlchemy statement, one parameter set per row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Boolean, Column, DateTime, Executable, Integer, Table, TextClause, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from posgate.services.inventory.sql import is_postgres
from posgate.services.inventory.tables import changes, movements, stock, store_sequences

Arrays = Mapping[str, Sequence[object]]
"""Column name -> one value per row."""


@dataclass(frozen=True)
class Statement:
    """One bulk write: the PostgreSQL `unnest` form and the plain form for other backends."""

    postgres: TextClause
    other: Executable


def _array_type(column: Column[Any]) -> str:
    if isinstance(column.type, DateTime) or isinstance(getattr(column.type, "impl", None), DateTime):
        return "timestamptz[]"
    if isinstance(column.type, Boolean):
        return "boolean[]"
    if isinstance(column.type, Integer):
        return "bigint[]"
    return "text[]"


def unnest_insert(table: Table, columns: Sequence[str], suffix: str = "") -> TextClause:
    """`INSERT INTO table (columns) SELECT * FROM unnest(...) <suffix>`, one array per column."""
    arrays = ", ".join(f"CAST(:{name} AS {_array_type(table.c[name])})" for name in columns)
    names = ", ".join(columns)
    # Table and column names come from our own table definitions, never from input.
    return text(f"INSERT INTO {table.name} ({names}) SELECT * FROM unnest({arrays}) {suffix}")  # noqa: S608


INSERT_CHANGES = Statement(unnest_insert(changes, [c.name for c in changes.c]), sqlite.insert(changes))

_MOVEMENT_COLUMNS = [c.name for c in movements.c if c.name != "id"]
CLAIM_MOVEMENTS = Statement(
    unnest_insert(
        movements,
        _MOVEMENT_COLUMNS,
        "ON CONFLICT (tenant_id, idempotency_key) DO NOTHING RETURNING tenant_id, idempotency_key",
    ),
    sqlite.insert(movements)
    .on_conflict_do_nothing(index_elements=["tenant_id", "idempotency_key"])
    .returning(movements.c.tenant_id, movements.c.idempotency_key),
)

_allocate = sqlite.insert(store_sequences)
ALLOCATE = Statement(
    unnest_insert(
        store_sequences,
        ("tenant_id", "store_id", "last_sequence"),
        "ON CONFLICT (tenant_id, store_id) DO UPDATE"
        " SET last_sequence = inv_store_sequences.last_sequence + excluded.last_sequence"
        " RETURNING tenant_id, store_id, last_sequence",
    ),
    _allocate.on_conflict_do_update(
        index_elements=["tenant_id", "store_id"],
        set_={"last_sequence": store_sequences.c.last_sequence + _allocate.excluded.last_sequence},
    ).returning(store_sequences.c.tenant_id, store_sequences.c.store_id, store_sequences.c.last_sequence),
)

STOCK_COLUMNS = tuple(column.name for column in stock.c)
_add = sqlite.insert(stock)
# New positions are inserted as given; existing ones get the delta added and the new sequence.
ADD_TO_STOCK = Statement(
    unnest_insert(
        stock,
        STOCK_COLUMNS,
        "ON CONFLICT (tenant_id, store_id, sku) DO UPDATE SET on_hand = inv_stock.on_hand + excluded.on_hand,"
        " sequence = excluded.sequence, updated_at = excluded.updated_at"
        f" RETURNING {', '.join(STOCK_COLUMNS)}",
    ),
    _add.on_conflict_do_update(
        index_elements=["tenant_id", "store_id", "sku"],
        set_={
            "on_hand": stock.c.on_hand + _add.excluded.on_hand,
            "sequence": _add.excluded.sequence,
            "updated_at": _add.excluded.updated_at,
        },
    ).returning(*stock.c),
)


async def write(session: AsyncSession, statement: Statement, arrays: Arrays) -> Sequence[Sequence[Any]]:
    """Write the rows given column-wise; return the rows the statement returned (if any)."""
    if is_postgres(session):
        result = await session.execute(statement.postgres, dict(arrays))
    else:
        names = list(arrays)
        rows = [dict(zip(names, values, strict=True)) for values in zip(*arrays.values(), strict=True)]
        if not rows:
            return []
        result = await session.execute(statement.other, rows)
    return result.all() if cast(CursorResult[Any], result).returns_rows else []
