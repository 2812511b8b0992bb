"""`posgate.db.bulk` on PostgreSQL: every column type comes back exactly as it was given."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from posgate.db import bulk
from posgate.db.engine import create_engine, session_factory

ROWS = sa.Table(
    "bulk_rows",
    sa.MetaData(),
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(64)),
    sa.Column("amount", sa.BigInteger),
    sa.Column("flag", sa.Boolean),
    sa.Column("doc", sa.JSON),
    sa.Column("at", sa.DateTime(timezone=True)),
    sa.Column("blob", sa.LargeBinary),
)
COLUMNS = ("name", "amount", "flag", "doc", "at", "blob")
INSERT = bulk.Statement.unnest(ROWS, COLUMNS, "RETURNING id", sqlite.insert(ROWS))
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
# An offset of its own and the last microsecond of a day: JSON carries it as text.
ELSEWHERE = datetime(2026, 1, 1, 23, 59, 59, 999_999, tzinfo=timezone(timedelta(hours=5, minutes=30)))


@pytest.fixture
async def sessions(postgres_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(postgres_url)
    async with engine.begin() as connection:
        await connection.run_sync(ROWS.metadata.create_all)
    yield session_factory(engine)
    await engine.dispose()


@pytest.mark.parametrize("copies", [1, 5], ids=["arrays", "json"])
async def test_values_json_cannot_spell_plainly_come_back_unchanged(sessions, copies: int) -> None:
    # 7 rows go as arrays; 35 (at least `JSON_FROM_ROWS`) as JSON.
    assert (7 * copies >= bulk.JSON_FROM_ROWS) == (copies == 5)
    names = ['quote " and \\ backslash', "émoji 🧾 and ümlaut", "{1,2}", "NULL", "", None, "123"] * copies
    amounts = [2**63 - 1, -(2**63), 0, 2**53 + 1, None, 7, -1] * copies
    flags = [True, False, None, True, False, True, False] * copies
    docs = [json.dumps({"k": ["v", 1]}), json.dumps("text"), None, "[]", "{}", "null", "1.5"] * copies
    ats = [NOW, NOW + timedelta(microseconds=1), None, ELSEWHERE, NOW, NOW, NOW] * copies
    blobs = [b"\x00\xff", b"", None, b"x", b"y", b"z", b"'"] * copies
    arrays = {"name": names, "amount": amounts, "flag": flags, "doc": docs, "at": ats, "blob": blobs}

    async with sessions() as session, session.begin():
        # The session's own time zone must not shift what was given with an offset.
        await session.execute(sa.text("SET LOCAL TIME ZONE 'Pacific/Chatham'"))
        ids = [int(row[0]) for row in await bulk.write(session, INSERT, arrays)]

    assert ids == sorted(ids)  # rows inserted in the order given
    async with sessions() as session:
        stored = (await session.execute(sa.select(ROWS).order_by(ROWS.c.id))).all()
    assert [row.name for row in stored] == names
    assert [row.amount for row in stored] == amounts
    assert [row.flag for row in stored] == flags
    assert [row.doc for row in stored] == [None if d is None else json.loads(d) for d in docs]
    assert [row.at for row in stored] == ats
    assert [row.blob for row in stored] == blobs


async def test_a_value_too_long_for_its_column_is_refused(sessions) -> None:
    arrays = {"name": ["x" * 65], "amount": [1], "flag": [True], "doc": [None], "at": [NOW], "blob": [b""]}
    async with sessions() as session:
        with pytest.raises(sa.exc.DBAPIError):
            await bulk.write(session, INSERT, arrays)


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
async def test_among_selects_the_ids_given_with_one_sql_text_on_postgresql(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(ROWS.metadata.create_all)
        async with session_factory(engine)() as session, session.begin():
            ids = [11, 12, 2**40, 14, 15, 16]
            await session.execute(sa.insert(ROWS), [{"id": n, "name": f"row {n}"} for n in ids])
            texts = set()
            for wanted in ([ids[1]], [ids[0], ids[2], ids[5]], ids, []):
                query = sa.select(ROWS.c.id).where(bulk.among(session, ROWS.c.id, wanted)).order_by(ROWS.c.id)
                assert list((await session.execute(query)).scalars()) == sorted(wanted)
                texts.add(str(query.compile(dialect=session.get_bind().dialect)))
        # One statement for every length: on PostgreSQL the ids are bound as one array.
        (sql,) = texts
        assert ("= ANY (" in sql) == (engine.dialect.name == "postgresql")
    finally:
        await engine.dispose()
