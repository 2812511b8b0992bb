"""The admin API on a real database: a gateway app, admin tokens, and unmapped-SKU failures."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from posgate.db.engine import create_engine, session_factory
from posgate.gateway.adapters.registry import ADAPTERS
from posgate.gateway.deliveries import IngestResult
from posgate.gateway.http.app import build_app
from posgate.gateway.http.context import GatewayContext
from posgate.gateway.pipeline import ingest
from posgate.settings import Settings
from tests.integration.gateway.conftest import MAPPED, delivery, load_mappings
from tests.unit.gateway.adapters.standard.cases import NOW, SECRET

TOKENS = ["admin-token-one-0123456789", "admin-token-two-0123456789"]
AUTH = {"Authorization": f"Bearer {TOKENS[1]}"}
# Everything but the TSHIRT-M SKU: inventory_movements.json then fails with `unmapped_sku`.
WITHOUT_M = [entry for entry in MAPPED if entry.vendor_id != "TSHIRT-M"]


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(database_url)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


@pytest.fixture
async def client(sessions, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(database_url=database_url, admin_tokens=TOKENS)
    ctx = GatewayContext(settings=settings, sessions=sessions, adapters=ADAPTERS, clock=lambda: NOW)
    transport = httpx.ASGITransport(app=build_app(ctx))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        yield http


async def unmapped_sku_failure(sessions, fixture: str = "inventory_movements.json") -> IngestResult:
    """Ingest a signed delivery whose TSHIRT-M SKU has no mapping: a `mapping` failure."""
    await load_mappings(sessions, WITHOUT_M)
    result = await ingest(sessions, delivery(fixture), (SECRET,), NOW, tenant="tenant-acme")
    assert (result.outcome, result.failure_class, result.reason) == ("failed", "mapping", "unmapped_sku")
    return result
