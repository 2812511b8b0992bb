"""The whole gateway app on a real migrated database, seeded so fuzzed requests reach real rows.

Seeded: admin tokens; a Standard Webhooks credential and a seller import credential; the
mappings of both; one open `unmapped_sku` failure (so `/v1/admin/failures/{id}` finds one).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette

from posgate.db.engine import create_engine, session_factory
from posgate.gateway.adapters.registry import ADAPTERS
from posgate.gateway.http.app import build_app
from posgate.gateway.http.context import GatewayContext
from posgate.settings import Settings
from tests.integration.gateway.conftest import MAPPED, load_mappings
from tests.integration.gateway_admin.conftest import unmapped_sku_failure
from tests.integration.gateway_imports.conftest import PROVIDER as SELLER
from tests.integration.gateway_imports.conftest import TOKEN as SELLER_TOKEN
from tests.integration.gateway_imports.conftest import mapping_entries
from tests.unit.gateway.adapters.standard.cases import NOW, SECRET

ADMIN_TOKEN = "fuzz-admin-token-0123456789"
CREDENTIALS = [
    {"provider": "standard", "tenant": "tenant-acme", "secrets": [SECRET.decode()]},
    {"provider": SELLER, "tenant": "tenant-acme", "secrets": [SELLER_TOKEN]},
]

__all__ = ["ADMIN_TOKEN", "NOW", "SECRET", "SELLER", "SELLER_TOKEN", "FuzzGateway"]


@dataclass(frozen=True)
class FuzzGateway:
    """The app under fuzzing and an in-process client of it (same event loop as the engine)."""

    app: Starlette
    client: httpx.AsyncClient
    sessions: async_sessionmaker[AsyncSession]


@pytest.fixture
async def fuzz_gateway(database_url: str) -> AsyncIterator[FuzzGateway]:
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    try:
        await unmapped_sku_failure(sessions)
        await load_mappings(sessions, [*MAPPED, *mapping_entries()])
        settings = Settings(
            database_url=database_url, admin_tokens=[ADMIN_TOKEN], webhook_credentials=CREDENTIALS
        )
        app = build_app(GatewayContext(settings, sessions, ADAPTERS, clock=lambda: NOW))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://gateway.test", timeout=30
        ) as client:
            yield FuzzGateway(app, client, sessions)
    finally:
        await engine.dispose()
