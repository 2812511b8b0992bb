"""`posgate.db.raw`: statements sent through asyncpg belong to the session's transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from posgate.bus.held import HeldConnection
from posgate.db import raw
from posgate.db.engine import create_engine, session_factory
from posgate.db.raw import PositionalSql

INSERT = PositionalSql.of(
    text(
        "INSERT INTO raw_t (k, v) SELECT * FROM unnest(CAST(:k AS text[]), CAST(:v AS bigint[]))"
        " RETURNING k, v"
    )
)
COUNT = text("SELECT count(*) FROM raw_t")


@pytest.fixture
async def engine(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(postgres_url)
    async with engine.begin() as connection:
        await connection.execute(text("CREATE TABLE raw_t (k text PRIMARY KEY, v bigint NOT NULL)"))
    yield engine
    await engine.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return session_factory(engine)


async def _count(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return int((await session.execute(COUNT)).scalar_one())


def test_named_parameters_become_numbered_once_each() -> None:
    statement = PositionalSql.of(text("SELECT CAST(:a AS int) + :b + :a, 'x::text'"))
    assert statement.sql == "SELECT CAST($1 AS int) + $2 + $1, 'x::text'"
    assert statement.names == ("a", "b")
    assert statement.arguments({"b": 2, "a": 1, "unused": 3}) == [1, 2]


async def test_a_first_statement_starts_the_sessions_transaction(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        await session.begin()
        rows = await raw.fetch(session, INSERT, {"k": ["a", "b"], "v": [1, 2]})
        assert [tuple(row) for row in rows] == [("a", 1), ("b", 2)]
        # The same transaction: SQLAlchemy sees the uncommitted rows.
        assert (await session.execute(COUNT)).scalar_one() == 2
        await session.rollback()
    assert await _count(sessions) == 0


async def test_rows_commit_with_the_session(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session, session.begin():
        await session.execute(text("INSERT INTO raw_t VALUES ('first', 0)"))
        await raw.fetch(session, INSERT, {"k": ["c"], "v": [3]})
    assert await _count(sessions) == 2


async def test_errors_are_sqlalchemys_and_hide_the_parameters(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        await session.begin()
        with pytest.raises(IntegrityError) as caught:
            await raw.fetch(session, INSERT, {"k": ["d", "d"], "v": [4, 5]})
        assert getattr(caught.value.orig, "sqlstate", None) == "23505"
        assert not caught.value.connection_invalidated
        await session.rollback()
    assert await _count(sessions) == 0


async def test_a_killed_connection_is_reported_invalidated(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with sessions() as session:
        await session.begin()
        pid = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        async with engine.connect() as other:
            await other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        with pytest.raises(DBAPIError) as caught:
            await raw.fetch(session, INSERT, {"k": ["e"], "v": [6]})
        assert caught.value.connection_invalidated
        assert "[parameters" not in str(caught.value)
    assert await _count(sessions) == 0


@pytest.fixture
async def bound(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[tuple[AsyncConnection, AsyncSession]]:
    """A connection held as `posgate.bus.held` holds one, and a session bound to it."""
    async with engine.connect() as connection:
        yield connection, sessions(bind=connection)


async def _insert(session: AsyncSession, key: str, value: int) -> None:
    await raw.fetch(session, INSERT, {"k": [key], "v": [value]})


class Boom(Exception):
    """The block's own failure."""


async def test_a_transaction_of_raw_statements_commits_without_sqlalchemy(
    bound: tuple[AsyncConnection, AsyncSession], sessions: async_sessionmaker[AsyncSession]
) -> None:
    connection, session = bound
    async with raw.transaction(session, connection):
        await _insert(session, "a", 1)
        assert not session.in_transaction()
    async with raw.transaction(session, connection):
        await _insert(session, "b", 2)
    assert await _count(sessions) == 2


async def test_sqlalchemy_statements_share_the_transaction(
    bound: tuple[AsyncConnection, AsyncSession], sessions: async_sessionmaker[AsyncSession]
) -> None:
    connection, session = bound
    async with raw.transaction(session, connection):
        await _insert(session, "a", 1)
        await session.execute(text("INSERT INTO raw_t VALUES ('b', 2)"))
        assert (await session.execute(COUNT)).scalar_one() == 2
    assert not session.in_transaction()
    with pytest.raises(Boom):
        async with raw.transaction(session, connection):
            await session.execute(text("INSERT INTO raw_t VALUES ('c', 3)"))
            await _insert(session, "d", 4)
            raise Boom
    assert await _count(sessions) == 2


async def test_a_failed_block_rolls_its_raw_statements_back(
    bound: tuple[AsyncConnection, AsyncSession], sessions: async_sessionmaker[AsyncSession]
) -> None:
    connection, session = bound
    with pytest.raises(Boom):
        async with raw.transaction(session, connection):
            await _insert(session, "a", 1)
            raise Boom
    async with raw.transaction(session, connection):
        await _insert(session, "b", 2)
    async with sessions() as check:
        assert list((await check.execute(text("SELECT k FROM raw_t"))).scalars()) == ["b"]


async def test_begin_on_a_killed_connection_is_reported_invalidated(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with engine.connect() as connection:
        pid = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        await connection.commit()
        async with engine.connect() as other:
            await other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        session = sessions(bind=connection)
        with pytest.raises(DBAPIError) as caught:
            async with raw.transaction(session, connection):
                await _insert(session, "a", 1)
        assert caught.value.connection_invalidated
        await connection.invalidate()
    assert await _count(sessions) == 0


async def test_a_commit_inside_the_block_does_not_leave_later_statements_uncommitted(
    bound: tuple[AsyncConnection, AsyncSession], sessions: async_sessionmaker[AsyncSession]
) -> None:
    connection, session = bound
    async with raw.transaction(session, connection):
        await session.execute(text("INSERT INTO raw_t VALUES ('a', 1)"))
        await session.commit()
        await _insert(session, "b", 2)
    assert await _count(sessions) == 2


async def test_an_unbegun_block_commits_each_raw_statement_on_its_own(
    bound: tuple[AsyncConnection, AsyncSession], sessions: async_sessionmaker[AsyncSession]
) -> None:
    connection, session = bound
    with pytest.raises(Boom):
        async with raw.transaction(session, connection, begin=False):
            await _insert(session, "a", 1)
            assert raw.autocommits(session)
            # Committed already: another connection sees it inside the block.
            assert await _count(sessions) == 1
            raise Boom
    assert await _count(sessions) == 1


async def test_begin_now_makes_the_later_statements_one_transaction(
    bound: tuple[AsyncConnection, AsyncSession], sessions: async_sessionmaker[AsyncSession]
) -> None:
    connection, session = bound
    with pytest.raises(Boom):
        async with raw.transaction(session, connection, begin=False):
            await _insert(session, "a", 1)
            await raw.begin_now(session)
            assert not raw.autocommits(session)
            await _insert(session, "b", 2)
            assert await _count(sessions) == 1
            raise Boom
    async with raw.transaction(session, connection, begin=False):
        await raw.begin_now(session)
        await _insert(session, "c", 3)
    async with sessions() as check:
        assert sorted((await check.execute(text("SELECT k FROM raw_t"))).scalars()) == ["a", "c"]


async def test_a_sqlalchemy_statement_begins_the_unbegun_blocks_transaction(
    bound: tuple[AsyncConnection, AsyncSession], sessions: async_sessionmaker[AsyncSession]
) -> None:
    connection, session = bound
    async with raw.transaction(session, connection, begin=False):
        await session.execute(text("INSERT INTO raw_t VALUES ('a', 1)"))
        assert not raw.autocommits(session)
        await _insert(session, "b", 2)
        assert await _count(sessions) == 0
    assert await _count(sessions) == 2
    assert not raw.autocommits(session)


async def test_a_held_connection_killed_between_blocks_fails_one_block_then_takes_a_fresh_one(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    # `HeldConnection` keeps the asyncpg connection it looked up; a dead one must not outlive
    # the block that found it dead.
    held = HeldConnection(sessions)
    try:
        async with held.begin() as session:
            await _insert(session, "a", 1)
            pid = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        async with engine.connect() as other:
            await other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        with pytest.raises(DBAPIError) as caught:
            async with held.begin() as session:
                await _insert(session, "b", 2)
        assert caught.value.connection_invalidated
        async with held.begin(deferred=True) as session:
            await _insert(session, "c", 3)
            assert (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one() != pid
    finally:
        await held.close()
    async with sessions() as check:
        assert list((await check.execute(text("SELECT k FROM raw_t ORDER BY k"))).scalars()) == ["a", "c"]
