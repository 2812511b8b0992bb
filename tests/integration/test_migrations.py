"""Migrations create the same schema on SQLite and PostgreSQL and can be rolled back."""

from __future__ import annotations

import sqlalchemy as sa

from posgate.db import migrate
from posgate.db.engine import create_engine
from posgate.db.schema import metadata


async def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return set(await connection.run_sync(lambda sync: sa.inspect(sync).get_table_names()))
    finally:
        await engine.dispose()


async def test_head_creates_every_declared_table(database_url: str) -> None:
    tables = await _tables(database_url)
    assert set(metadata.tables) <= tables
    assert "alembic_version" in tables


async def test_downgrade_to_base_then_upgrade_again(database_url: str) -> None:
    import asyncio

    await asyncio.to_thread(migrate.downgrade, database_url, "base")
    assert not (set(metadata.tables) & await _tables(database_url))
    await migrate.upgrade_async(database_url)
    assert set(metadata.tables) <= await _tables(database_url)


async def test_migrations_create_exactly_the_declared_schema(database_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            differences = await connection.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
            )
    finally:
        await engine.dispose()
    assert differences == []


def _body_compression(table: str) -> sa.TextClause:
    """The compression set on `table`'s `body` column ("l" lz4, "" the server's default)."""
    return sa.text(
        "SELECT attcompression::text FROM pg_attribute WHERE attrelid = CAST(:table AS regclass)"
        " AND attname = 'body'"
    ).bindparams(table=table)


async def test_outbox_bodies_are_compressed_with_lz4_on_postgres(postgres_url: str) -> None:
    import asyncio

    engine = create_engine(postgres_url)
    query = _body_compression("event_outbox")
    try:
        async with engine.connect() as connection:
            assert await connection.scalar(query) == "l"
        await asyncio.to_thread(migrate.downgrade, postgres_url, "0010")
        async with engine.connect() as connection:
            # No setting of its own: the server's default_toast_compression (pglz out of the box).
            assert await connection.scalar(query) == ""
        await migrate.upgrade_async(postgres_url)
        async with engine.connect() as connection:
            assert await connection.scalar(query) == "l"
    finally:
        await engine.dispose()


async def test_change_log_bodies_are_compressed_with_lz4_on_postgres(postgres_url: str) -> None:
    engine = create_engine(postgres_url)
    try:
        async with engine.connect() as connection:
            assert await connection.scalar(_body_compression("inv_change_blocks")) == "l"
    finally:
        await engine.dispose()


async def test_stock_pages_keep_room_for_updates_on_postgres(postgres_url: str) -> None:
    import asyncio

    engine = create_engine(postgres_url)
    query = sa.text("SELECT reloptions FROM pg_class WHERE oid = CAST('inv_stock' AS regclass)")
    try:
        async with engine.connect() as connection:
            assert await connection.scalar(query) == ["fillfactor=70"]
        await asyncio.to_thread(migrate.downgrade, postgres_url, "0012")
        async with engine.connect() as connection:
            assert await connection.scalar(query) is None
        await migrate.upgrade_async(postgres_url)
        async with engine.connect() as connection:
            assert await connection.scalar(query) == ["fillfactor=70"]
    finally:
        await engine.dispose()
