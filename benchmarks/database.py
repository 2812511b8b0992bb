"""A throw-away PostgreSQL database per run, and the facts about it a reader needs."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information
from sqlalchemy.engine import make_url

from posgate.db import migrate


@dataclass(frozen=True)
class Server:
    """Where PostgreSQL listens; `url` is the SQLAlchemy URL of one database on it."""

    host: str
    port: int
    user: str

    @classmethod
    def from_url(cls, url: str) -> Server:
        """Parse `postgresql+asyncpg://user@host:port` (any database part is ignored)."""
        parsed = make_url(url)
        return cls(parsed.host or "127.0.0.1", parsed.port or 5432, parsed.username or "postgres")

    def url(self, database: str) -> str:
        """The asyncpg SQLAlchemy URL of `database`."""
        return f"postgresql+asyncpg://{self.user}@{self.host}:{self.port}/{database}"

    async def connect(self, database: str = "postgres") -> asyncpg.Connection:
        """A plain asyncpg connection."""
        return await asyncpg.connect(host=self.host, port=self.port, user=self.user, database=database)


@asynccontextmanager
async def fresh_database(server: Server) -> AsyncIterator[str]:
    """Create `posgate_bench_<random>`, migrate it, yield its URL, and drop it afterwards."""
    name = f"posgate_bench_{uuid.uuid4().hex[:10]}"
    admin = await server.connect()
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        await asyncio.to_thread(migrate.upgrade, server.url(name))
        yield server.url(name)
    finally:
        admin = await server.connect()
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def durability(server: Server) -> dict[str, str]:
    """The settings that decide whether a commit waits for the disk."""
    connection = await server.connect()
    try:
        facts = {"server_version": str(await connection.fetchval("SHOW server_version"))}
        for setting in ("fsync", "synchronous_commit", "wal_sync_method"):
            facts[setting] = str(await connection.fetchval(f"SHOW {setting}"))
        return facts
    finally:
        await connection.close()


async def movement_count(server: Server, database_url: str, tenant_id: str) -> int:
    """Movements of `tenant_id` committed in the ledger."""
    connection = await server.connect(make_url(database_url).database or "")
    try:
        count = await connection.fetchval(
            "SELECT count(*) FROM inv_movements WHERE tenant_id = $1", tenant_id
        )
        return int(count)
    finally:
        await connection.close()


async def commits(server: Server, database_url: str) -> int:
    """Transactions committed in the database so far (PostgreSQL's statistics, flushed about every second)."""
    name = make_url(database_url).database or ""
    connection = await server.connect()
    try:
        count = await connection.fetchval("SELECT xact_commit FROM pg_stat_database WHERE datname = $1", name)
        return int(count or 0)
    finally:
        await connection.close()


async def analyze(server: Server, database_url: str) -> None:
    """Refresh the planner's statistics of every table, as autovacuum does in a database in service.

    A fresh bench database fills faster than autovacuum looks (once a minute): without this,
    plans cached while its tables were nearly empty (sequential scans) stay in use.
    """
    connection = await server.connect(make_url(database_url).database or "")
    try:
        await connection.execute("ANALYZE")
    finally:
        await connection.close()
