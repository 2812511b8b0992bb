"""An inventory gRPC server in this process, on a real database, with real auth."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from posgate.bus.transport import build_event_bus
from posgate.clients.inventory import InventoryClient
from posgate.components import Dependencies
from posgate.db.engine import create_engine, session_factory
from posgate.runtime.server import start_server
from posgate.settings import EventTransport, Settings

# The WatchStock tests' fixtures, for every module here.
from tests.integration.inventory.watching import hub, sessions  # noqa: F401

INTERNAL_TOKEN = "internal-token-for-tests"
SCOPED_SECRET = "kiosk-token-for-t1"
SCOPED_TOKEN = f"{SCOPED_SECRET}@t1"  # the configured entry: the secret, scoped to tenant t1


@dataclass
class InventoryServer:
    port: int
    client: InventoryClient
    scoped_client: InventoryClient
    sessions: async_sessionmaker[AsyncSession]
    settings: Settings
    stream_port: int = 0  # the stream edge's, when POSGATE_INVENTORY_STREAM_PORT was set


async def start_inventory(
    database_url: str, *, clients_on_edge: bool = False, **overrides: object
) -> AsyncIterator[InventoryServer]:
    """The service with `overrides` of its settings; with `clients_on_edge`, its clients call the edge."""
    if clients_on_edge:
        overrides.setdefault("inventory_stream_port", 0)
    values: dict[str, object] = {
        "dev_mode": False,
        "database_url": database_url,
        "event_transport": EventTransport.INPROCESS,
        "auth_tokens": [SecretStr(INTERNAL_TOKEN), SecretStr(SCOPED_TOKEN)],
        "health_probe_interval_s": 0.5,
    }
    settings = Settings(**(values | overrides))  # type: ignore[arg-type]
    from posgate.services.inventory.component import component

    engine = create_engine(database_url, pool_size=20)
    factory = session_factory(engine)
    deps = Dependencies(settings, engine, factory, build_event_bus(settings, factory))
    built = component(deps)
    await deps.bus.start()
    await built.start()
    running = await start_server(built.spec, settings, port=0)
    stream_port = built.listening.get("stream-edge", 0)
    target = f"127.0.0.1:{stream_port if clients_on_edge else running.port}"
    client = InventoryClient.connect(target, token=INTERNAL_TOKEN)
    scoped = InventoryClient.connect(target, token=SCOPED_SECRET)
    try:
        yield InventoryServer(running.port, client, scoped, factory, settings, stream_port)
    finally:
        await client.close()
        await scoped.close()
        await built.drain()
        await running.stop(1)
        await built.stop()
        await deps.bus.stop()
        await engine.dispose()


@pytest.fixture
async def inventory_server(database_url: str) -> AsyncIterator[InventoryServer]:
    """The inventory service on SQLite and on PostgreSQL."""
    async for server in start_inventory(database_url):
        yield server
