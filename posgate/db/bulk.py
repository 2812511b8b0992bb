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
from typing import Any, TypeVar, cast

from sqlalchemy import (
    ARRAY,
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Executable,
    Integer,
    LargeBinary,
    Table,
    TextClause,
    any_,
    bindparam,
    text,
)
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from posgate.db import raw
from posgate.db.raw import PositionalSql

Arrays = Mapping[str, Sequence[object]]
"""Column name -> one value per row."""


JSON_FROM_ROWS = 32
"""Rows from which a bulk write binds its columns as JSON rather than as arrays (`unnest_insert`)."""

_T = TypeVar("_T")


def pick(rows: int, arrays: _T, as_json: _T) -> _T:
    """The form of a bulk statement to send for `rows` rows (`unnest_insert`)."""
    return as_json if rows >= JSON_FROM_ROWS else arrays


@dataclass(frozen=True)
class Statement:
    """One bulk write: the PostgreSQL forms (arrays, and JSON for large batches) and the plain form.

    `other` is the statement for other backends (SQLite), one parameter set per row.
    """

    postgres: TextClause
    other: Executable
    postgres_json: TextClause | None = None

    @classmethod
    def unnest(cls, table: Table, columns: Sequence[str], suffix: str, other: Executable) -> Statement:
        """Both PostgreSQL forms of `unnest_insert(table, columns, suffix)`, and `other`."""
        return cls(
            unnest_insert(table, columns, suffix), other, unnest_insert(table, columns, suffix, as_json=True)
        )

    @cached_property
    def positional(self) -> PositionalSql:
        """The PostgreSQL array form as asyncpg takes it (`posgate.db.raw`)."""
        return PositionalSql.of(self.postgres)

    @cached_property
    def positional_json(self) -> PositionalSql:
        """The PostgreSQL JSON form as asyncpg takes it (the array form if there is none)."""
        return self.positional if self.postgres_json is None else PositionalSql.of(self.postgres_json)

    def for_rows(self, rows: int) -> PositionalSql:
        """The form to send for a batch of `rows` rows."""
        return pick(rows, self.positional, self.positional_json)


def is_postgres(session: AsyncSession) -> bool:
    """Whether `session` talks to PostgreSQL (which takes the `unnest` forms)."""
    return bool(session.get_bind().dialect.name == "postgresql")


def among(session: AsyncSession, column: ColumnElement[int], ids: Sequence[int]) -> ColumnElement[bool]:
    """`column IN ids` as one SQL text whatever the number of ids: on PostgreSQL `= ANY(array)`.

    An `IN` list is a new statement for each length: asyncpg prepares it again (a round trip)
    and PostgreSQL plans it afresh, for every length its statement cache does not hold. Under
    load the dispatcher's mark of a round's commands came in 87 lengths in ten seconds.
    """
    if is_postgres(session):
        return column == any_(bindparam(None, list(ids), type_=ARRAY(BigInteger)))
    return column.in_(ids)


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


def unnest_insert(
    table: Table, columns: Sequence[str], suffix: str = "", *, prefix: str = "", as_json: bool = False
) -> TextClause:
    """`INSERT INTO table (columns) SELECT ... FROM <one list per column> <suffix>`.

    Each column is bound as `:<prefix><column>`, a list with one value per row; the function
    scan keeps the rows in the order given. By default each list is an array (`unnest`). With
    `as_json`, every column but bytes travels as one JSON array instead
    (`json_array_elements_text`, then cast; `posgate.db.raw.PositionalSql` encodes them, a
    timestamp as ISO 8601 text), and bytes stay an array (JSON has no type for them).
    asyncpg's array encoder checks every element against three abstract base classes, about
    0.3 µs each, and a timestamp costs it 0.5 µs, where `json.dumps` of the whole list costs a
    fraction of that: a 1,000-movement ledger batch spent more CPU encoding its arrays than on
    anything else of its own. For a few rows the arrays are cheaper (`pick`, `JSON_FROM_ROWS`).
    """
    rows = unnest_rows(table, columns, prefix=prefix, as_json=as_json)
    # Table and column names come from our own table definitions, never from input.
    return text(f"INSERT INTO {table.name} ({', '.join(columns)}) {rows} {suffix}")


def unnest_rows(
    table: Table, columns: Sequence[str], *, prefix: str = "", as_json: bool = False, ordinality: bool = False
) -> str:
    """The `SELECT` of `unnest_insert`: one row per element, one column per list (see there).

    With `ordinality`, a last column `n` numbers the rows from 1 in the order given.
    """
    sources, values = [], []
    for name in columns:
        kind = _array_type(table.c[name])
        if as_json and kind != "bytea[]":
            sources.append(raw.json_elements(f"{prefix}{name}"))
            values.append(f"CAST(r.{name} AS {kind[:-2]}) AS {name}")
        else:
            sources.append(f"unnest(CAST(:{prefix}{name} AS {kind}))")
            values.append(f"r.{name}")
    names = ", ".join(columns)
    numbered = (" WITH ORDINALITY", ", n", ", r.n") if ordinality else ("", "", "")
    return (
        f"SELECT {', '.join(values)}{numbered[2]}"  # noqa: S608 - our own column names
        f" FROM ROWS FROM ({', '.join(sources)}){numbered[0]} AS r({names}{numbered[1]})"
    )


async def write(session: AsyncSession, statement: Statement, arrays: Arrays) -> Sequence[Sequence[Any]]:
    """Write the rows given column-wise; return the rows the statement returned (if any)."""
    if is_postgres(session):
        count = len(next(iter(arrays.values()), ()))
        return await raw.fetch(session, statement.for_rows(count), arrays)
    names = list(arrays)
    rows = [dict(zip(names, values, strict=True)) for values in zip(*arrays.values(), strict=True)]
    if not rows:
        return []
    result = await session.execute(statement.other, rows)
    return result.all() if cast(CursorResult[Any], result).returns_rows else []
