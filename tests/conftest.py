"""Fixtures shared by every test: real databases and the real broker, never mocks of them.

A test that needs PostgreSQL, RabbitMQ or Redis fails (it never skips) when the service is down.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest

from posgate.db import migrate

PG_HOST = os.environ.get("POSGATE_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("POSGATE_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("POSGATE_TEST_PG_USER", "postgres")
AMQP_URL = os.environ.get("POSGATE_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
REDIS_URL = os.environ.get("POSGATE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
TEMPLATE_DB = f"posgate_tpl_{os.getpid()}"


def require_port(host: str, port: int, what: str) -> None:
    """Fail the test (never skip) when a service the test needs is unreachable."""
    try:
        with socket.create_connection((host, port), timeout=2):
            return
    except OSError as error:
        pytest.fail(
            f"{what} is not reachable at {host}:{port} ({error}); start it, see README", pytrace=False
        )


def pg_url(database: str) -> str:
    """An asyncpg SQLAlchemy URL for a database on the test server."""
    return f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}/{database}"


async def _admin(sql: str) -> None:
    connection = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres")
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated template database; each test clones it (CREATE DATABASE ... TEMPLATE)."""
    require_port(PG_HOST, PG_PORT, "PostgreSQL")
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{TEMPLATE_DB}"'))
    asyncio.run(_admin(f'CREATE DATABASE "{TEMPLATE_DB}"'))
    migrate.upgrade(pg_url(TEMPLATE_DB))
    yield TEMPLATE_DB
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{TEMPLATE_DB}" WITH (FORCE)'))


@pytest.fixture
async def postgres_url(pg_template: str) -> AsyncIterator[str]:
    """A fresh, migrated PostgreSQL database for one test."""
    name = f"posgate_t_{uuid.uuid4().hex[:12]}"
    await _admin(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    yield pg_url(name)
    await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def sqlite_url(tmp_path: Path) -> str:
    """A fresh, migrated SQLite database file for one test."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'posgate.db'}"
    await migrate.upgrade_async(url)
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Runs a test once on SQLite and once on PostgreSQL."""
    name = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
def amqp_url() -> str:
    """The RabbitMQ URL; fails when the broker is unreachable."""
    require_port("127.0.0.1", 5672, "RabbitMQ")
    return AMQP_URL


@pytest.fixture
def redis_url() -> str:
    """The Redis URL; fails when the server is unreachable (tests use their own key prefixes)."""
    parts = urlsplit(REDIS_URL)
    require_port(parts.hostname or "127.0.0.1", parts.port or 6379, "Redis")
    return REDIS_URL


@pytest.fixture
def unique_name() -> str:
    """A short unique suffix so exchanges and queues never collide across tests."""
    return uuid.uuid4().hex[:10]
