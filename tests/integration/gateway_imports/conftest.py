"""The import endpoints in-process (httpx over ASGI) on a real database, with mappings loaded."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette

from posgate.db.engine import create_engine, session_factory
from posgate.gateway import mappings
from posgate.gateway.http import imports
from posgate.gateway.http.context import GatewayContext
from posgate.gateway.mappings import MappingEntry
from posgate.gateway.tables import MappingKind, commands
from posgate.settings import Settings

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
PROVIDER = "sellerhub"
MERCHANT = "acct-42"
TENANT = "tenant-acme"
TOKEN = "seller-token-acme"
OTHER_TOKEN = "seller-token-other"
URL = f"/v1/integrations/seller/{PROVIDER}/import"
NDJSON = {"authorization": f"Bearer {TOKEN}", "content-type": "application/x-ndjson"}
CSV = {"authorization": f"Bearer {TOKEN}", "content-type": "text/csv"}
CREDENTIALS = [
    {"provider": PROVIDER, "tenant": TENANT, "secrets": [TOKEN]},
    {"provider": PROVIDER, "tenant": "tenant-other", "secrets": [OTHER_TOKEN]},
]


def mapping_entries(stores: int = 2, skus: int = 5) -> list[MappingEntry]:
    """Tenant, stores `s0..` → `store-0..` and SKUs `v0..` → `SKU-0..` for the seller."""
    entries = [MappingEntry(PROVIDER, MERCHANT, MappingKind.TENANT, "", TENANT)]
    entries += [
        MappingEntry(PROVIDER, MERCHANT, MappingKind.STORE, f"s{i}", f"store-{i}") for i in range(stores)
    ]
    entries += [MappingEntry(PROVIDER, MERCHANT, MappingKind.SKU, f"v{i}", f"SKU-{i}") for i in range(skus)]
    entries.append(MappingEntry(PROVIDER, "acct-other", MappingKind.TENANT, "", "tenant-other"))
    return entries


class Gateway:
    """The import routes over one database, plus how many times the dispatcher was woken."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions
        self.wakes = 0
        settings = Settings(webhook_credentials=CREDENTIALS)
        ctx = GatewayContext(settings, sessions, {}, clock=lambda: NOW, wake_dispatcher=self._wake)
        self.app = Starlette(routes=imports.ROUTES)
        self.app.state.ctx = ctx

    def _wake(self) -> None:
        self.wakes += 1

    def client(self) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app)
        return httpx.AsyncClient(transport=transport, base_url="http://gateway.test", timeout=600)

    async def commands(self) -> list:
        async with self.sessions() as session:
            return list((await session.execute(select(commands).order_by(commands.c.id))).all())


async def gateway_on(url: str, entries: list[MappingEntry]) -> tuple[Gateway, object]:
    """A gateway on `url` with `entries` loaded; the second value is the engine to dispose."""
    engine = create_engine(url)
    sessions = session_factory(engine)
    async with sessions() as session:
        await mappings.upsert(session, entries, NOW)
        await session.commit()
    return Gateway(sessions), engine


@pytest.fixture
async def gateway(database_url: str) -> AsyncIterator[Gateway]:
    made, engine = await gateway_on(database_url, mapping_entries())
    try:
        yield made
    finally:
        await engine.dispose()  # type: ignore[attr-defined]
