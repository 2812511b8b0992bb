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

`transaction` goes one step further for the background committers (`posgate.bus.held`): BEGIN
and COMMIT go to asyncpg too (SQLAlchemy's session commit cost about 0.3 ms more per
transaction), unless something in the block did use the session. With `begin=False` it sends
no BEGIN: until something begins a transaction (`begin_now`, or a statement through the session),
each `fetch` commits by itself, so a block whose writes fit in one statement costs that one
round trip instead of three (BEGIN, the statement, COMMIT).

Both lean on attributes of SQLAlchemy's asyncpg adapter (`_execute_mutex`, `_transaction`,
`_start_transaction`, `_handle_exception`), unchanged from SQLAlchemy 1.4 to 2.1;
tests/integration/db/test_raw.py fails if they change.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import orjson
from sqlalchemy import ClauseElement
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql.compiler import SQLCompiler

_T = TypeVar("_T")
_HELD = "posgate.db.raw.held"
"""`session.info` key: the adapted and the asyncpg connection of a `transaction` block."""
_UNBEGUN = "posgate.db.raw.unbegun"
"""`session.info` key, set in a `transaction(begin=False)` block: `fetch` begins nothing."""
_DIALECT = PGDialect_asyncpg()  # type: ignore[no-untyped-call]


_JSON_ELEMENTS = "json_array_elements_text(CAST(:{} AS json))"
_JSON_ELEMENTS_BOUND = re.compile(r"json_array_elements_text\(CAST\(\$(\d+) AS json\)\)")


def json_elements(name: str) -> str:
    """SQL reading parameter `name`, a list, as rows of text: `PositionalSql` sends it as JSON."""
    return _JSON_ELEMENTS.format(name)


@dataclass(frozen=True)
class PositionalSql:
    """A statement as asyncpg takes it: `$n` placeholders, and the parameter names in `$n` order.

    Parameters read through `json_elements` are sent as one JSON text each (orjson: a tenth of
    `json.dumps`'s time for a list of a thousand texts), a datetime as ISO 8601 text in UTC
    (which PostgreSQL casts back to the same instant).
    """

    sql: str
    names: tuple[str, ...]
    as_json: frozenset[str] = frozenset()

    @classmethod
    def of(cls, clause: ClauseElement) -> PositionalSql:
        """`clause` as SQLAlchemy's asyncpg dialect would send it (a repeated name keeps its number)."""
        compiled = cast(SQLCompiler, clause.compile(dialect=_DIALECT))
        names = tuple(compiled.positiontup or ())
        bound = {names[int(number) - 1] for number in _JSON_ELEMENTS_BOUND.findall(compiled.string)}
        return cls(compiled.string, names, frozenset(bound))

    def arguments(self, parameters: Mapping[str, object]) -> list[object]:
        """The values of `parameters` in `$n` order (lists read by `json_elements` as JSON)."""
        if not self.as_json:
            return [parameters[name] for name in self.names]
        return [
            _json_text(parameters[name]) if name in self.as_json else parameters[name] for name in self.names
        ]


def _json_text(values: object) -> str:
    # Datetimes go through `_json_default` (orjson would keep a non-UTC offset as given).
    return orjson.dumps(values, default=_json_default, option=orjson.OPT_PASSTHROUGH_DATETIME).decode()


def _json_default(value: object) -> str:
    """What is not written as JSON as it is: a datetime, as asyncpg would bind it (UTC)."""
    if isinstance(value, datetime):
        return _utc_text(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


@functools.lru_cache(maxsize=256)
def _utc_text(moment: datetime) -> str:
    # Remembered: the rows of one batch mostly share their commit time.
    return moment.astimezone(UTC).isoformat()


async def fetch(
    session: AsyncSession, statement: PositionalSql, parameters: Mapping[str, object]
) -> Sequence[Any]:
    """Run `statement` in `session`'s transaction on PostgreSQL; the rows it returned.

    In a `transaction(begin=False)` block in which nothing has begun a transaction yet, the
    statement commits on its own (`autocommits`).

    Raises:
        DBAPIError: The database or the connection failed, as SQLAlchemy would have raised it.

    """
    held: tuple[Any, Any] | None = session.info.get(_HELD)
    if held is None:
        held = await connections(await session.connection())
    adapted, driver = held
    arguments = statement.arguments(parameters)
    async with adapted._execute_mutex:
        try:
            if adapted._transaction is None and (not session.info.get(_UNBEGUN) or session.in_transaction()):
                await adapted._start_transaction()
            return await driver.fetch(statement.sql, *arguments)  # type: ignore[no-any-return]
        except DBAPIError:
            raise
        except Exception as error:
            raise _translated(session, adapted, statement.sql, error) from None


@contextlib.asynccontextmanager
async def transaction(
    session: AsyncSession,
    connection: AsyncConnection,
    *,
    begin: bool = True,
    drivers: tuple[Any, Any] | None = None,
) -> AsyncIterator[None]:
    """The block in one asyncpg transaction on `connection`, which `session` (bound to it) shares.

    Committed when the block ends without an error, rolled back otherwise. BEGIN and COMMIT
    go straight to asyncpg when nothing in the block went through SQLAlchemy; when something
    did, SQLAlchemy's own commit or rollback ends the same transaction (it was handed the
    asyncpg transaction as already started).

    With `begin=False` the transaction begins only when `begin_now` is called or a statement
    goes through the session; until then each `fetch` commits on its own (`autocommits`
    tells which).

    `drivers`: `connections(connection)`, if the caller keeps it (it looks them up otherwise).

    Raises:
        DBAPIError: BEGIN or COMMIT failed (as SQLAlchemy would report it).

    """
    adapted, driver = drivers or await connections(connection)
    session.info[_HELD] = (adapted, driver)
    if begin:
        await begin_now(session)
    else:
        session.info[_UNBEGUN] = True
    try:
        yield
    except BaseException:
        try:
            await _end(session, adapted, commit=False)
        except Exception:
            await connection.invalidate()
        raise
    finally:
        session.info.pop(_UNBEGUN, None)
    await _end(session, adapted, commit=True)


def autocommits(session: AsyncSession) -> bool:
    """Whether `fetch` in `session` commits each statement on its own (see `transaction`)."""
    if not session.info.get(_UNBEGUN):
        return False
    adapted, _ = session.info[_HELD]
    return adapted._transaction is None and not session.in_transaction()


async def begin_now(session: AsyncSession) -> None:
    """Begin the transaction of `session`'s `transaction` block, unless one has begun already."""
    adapted, driver = session.info[_HELD]
    if adapted._transaction is not None:
        return
    adapted._transaction = await _run(session, adapted, "BEGIN", lambda: _begin(driver))


async def connections(connection: AsyncConnection) -> tuple[Any, Any]:
    """SQLAlchemy's adapted connection under `connection`, and asyncpg's.

    They stay the same while `connection` is checked out and valid.
    """
    pooled = await connection.get_raw_connection()
    return pooled.dbapi_connection, pooled.driver_connection


async def _end(session: AsyncSession, adapted: Any, *, commit: bool) -> None:
    if session.in_transaction():
        # Something ran through SQLAlchemy: its commit or rollback ends the shared transaction.
        await (session.commit() if commit else session.rollback())
        await session.close()
    # Whatever transaction SQLAlchemy did not end (the block's own, or one a statement began
    # after the block committed through the session) ends here.
    current = adapted._transaction
    if current is None:
        return
    adapted._transaction = None
    await _run(
        session, adapted, "COMMIT" if commit else "ROLLBACK", current.commit if commit else current.rollback
    )


async def _begin(driver: Any) -> Any:
    started = driver.transaction()
    await started.start()
    return started


async def _run(session: AsyncSession, adapted: Any, sql: str, step: Callable[[], Awaitable[_T]]) -> _T:
    async with adapted._execute_mutex:
        try:
            return await step()
        except Exception as error:
            raise _translated(session, adapted, sql, error) from None


def _translated(session: AsyncSession, adapted: Any, sql: str, error: Exception) -> DBAPIError:
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
        sql,
        None,
        translated,
        dialect.loaded_dbapi.Error,
        hide_parameters=True,
        connection_invalidated=invalidated,
        dialect=dialect,
    )
    # `instance` only falls back to a `StatementError` for errors that are not the driver's.
    return wrapped if isinstance(wrapped, DBAPIError) else DBAPIError(sql, None, translated)
