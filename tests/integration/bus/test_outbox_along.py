"""`add_events(along=...)`: another write and the outbox insert as one statement on PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from posgate.bus.outbox import add_events
from posgate.db.bulk import unnest_insert
from posgate.db.tables import outbox
from tests.integration.bus.conftest import Db, event

_ROWS = sa.Table(
    "along_rows", sa.MetaData(), sa.Column("k", sa.Text, primary_key=True), sa.Column("v", sa.Integer)
)
INSERT_ROWS = unnest_insert(_ROWS, ["k", "v"], prefix="row_")


class Boom(Exception):
    """The producer's own failure after writing."""


async def _state(db: Db) -> tuple[list[str], list[str]]:
    async with db.engine.connect() as connection:
        rows = list((await connection.execute(sa.select(_ROWS.c.k).order_by(_ROWS.c.k))).scalars())
        ids = list((await connection.execute(sa.select(outbox.c.event_id).order_by(outbox.c.id))).scalars())
    return rows, ids


@pytest.fixture
async def along_db(pg_db: Db) -> Db:
    async with pg_db.engine.begin() as connection:
        await connection.run_sync(_ROWS.metadata.create_all)
    return pg_db


async def test_the_other_write_and_the_events_commit_together(along_db: Db) -> None:
    first, second = event(n=1), event(n=2)
    async with along_db.sessions() as session, session.begin():
        await add_events(
            session, [first, second], along=(INSERT_ROWS, {"row_k": ["a", "b"], "row_v": [1, 2]})
        )

    assert await _state(along_db) == (["a", "b"], [first.event_id, second.event_id])


async def test_a_rolled_back_transaction_keeps_neither(along_db: Db) -> None:
    with pytest.raises(Boom):
        async with along_db.sessions() as session, session.begin():
            await add_events(session, [event(n=1)], along=(INSERT_ROWS, {"row_k": ["a"], "row_v": [1]}))
            raise Boom

    assert await _state(along_db) == ([], [])


async def test_without_events_the_other_write_still_happens(along_db: Db) -> None:
    async with along_db.sessions() as session, session.begin():
        await add_events(session, [], along=(INSERT_ROWS, {"row_k": ["c"], "row_v": [3]}))

    assert await _state(along_db) == (["c"], [])
