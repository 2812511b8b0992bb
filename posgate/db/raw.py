"""Hot statements on PostgreSQL sent straight through asyncpg, inside the session's transaction.

SQLAlchemy's execution path (ORM session, Core compilation cache, parameter processing,
result wrapping, the greenlet hop) costs about as much CPU per statement as asyncpg's own
bind, execute and decode: on the 2-core benchmark machine about 0.2 ms more per statement, an
ingest or ledger transaction sends five to seven of them. The fixed-shape array statements
(`posgate.db.bulk`, the ingest's look-ups, the outbox insert) bind nothing SQLAlchemy needs to
process, so `fetch` gives their text straight to the session's asyncpg connection:

- the same connection and the same transaction: the SQLAlchemy dialect starts its asyncpg
  transaction at a connection's first statement, and `fetch` starts it the same way when it
  comes first, so the session's commit or rollback covers these statements too;
- asyncpg's own prepared statement cache, keyed by the SQL text;
- errors come out as SQLAlchemy's (`DBAPIError` and its subclasses, with
  `connection_invalidated` and the driver's `sqlstate`), as callers catch them today, with
  parameters hidden: they hold payloads.

It leans on three attributes of SQLAlchemy's asyncpg adapter (`_execute_mutex`,
`_transaction`, `_start_transaction`), unchanged from SQLAlchemy 1.4 to 2.1;
tests/integration/db/test_raw.py fails if they change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import TextClause
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

_DIALECT = PGDialect_asyncpg()  # type: ignore[no-untyped-call]


@dataclass(frozen=True)
class PositionalSql:
    """A `text()` statement (`clause`) as asyncpg takes it: `$n` placeholders, the names in `$n` order."""

    sql: str
    names: tuple[str, ...]
    clause: TextClause

    @classmethod
    def of(cls, clause: TextClause) -> PositionalSql:
        """`clause` as SQLAlchemy's asyncpg dialect would send it (a repeated name keeps its number)."""
        compiled = clause.compile(dialect=_DIALECT)
        return cls(compiled.string, tuple(compiled.positiontup or ()), clause)

    def arguments(self, parameters: Mapping[str, object]) -> list[object]:
        """The values of `parameters` in `$n` order."""
        return [parameters[name] for name in self.names]


async def fetch(
    session: AsyncSession, statement: PositionalSql, parameters: Mapping[str, object]
) -> Sequence[Any]:
    """Run `statement` in `session`'s transaction on PostgreSQL; the rows it returned.

    Raises:
        DBAPIError: The database or the connection failed, as SQLAlchemy would have raised it.

    """
    connection = await session.connection()
    pooled = await connection.get_raw_connection()
    adapted: Any = pooled.dbapi_connection
    driver: Any = pooled.driver_connection
    arguments = statement.arguments(parameters)
    async with adapted._execute_mutex:
        try:
            if adapted._transaction is None:
                await adapted._start_transaction()
            return await driver.fetch(statement.sql, *arguments)  # type: ignore[no-any-return]
        except DBAPIError:
            raise
        except Exception as error:
            raise _translated(session, adapted, statement, error) from None


def _translated(
    session: AsyncSession, adapted: Any, statement: PositionalSql, error: Exception
) -> DBAPIError:
    """`error` as SQLAlchemy reports a failed statement: the dialect's error class, wrapped."""
    dialect = session.get_bind().dialect
    try:
        adapted._handle_exception(error)
    except Exception as driver_error:
        translated = driver_error
    else:  # pragma: no cover - `_handle_exception` always raises
        translated = error
    invalidated = bool(dialect.is_disconnect(translated, adapted, None))  # type: ignore[arg-type]
    wrapped = DBAPIError.instance(
        statement.sql,
        None,
        translated,
        dialect.loaded_dbapi.Error,
        hide_parameters=True,
        connection_invalidated=invalidated,
        dialect=dialect,
    )
    # `instance` only falls back to a `StatementError` for errors that are not the driver's.
    return wrapped if isinstance(wrapped, DBAPIError) else DBAPIError(statement.sql, None, translated)
