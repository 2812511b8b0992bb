"""The webhook endpoints in-process (httpx over ASGI) on a real database."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from posgate.db.engine import create_engine, session_factory
from posgate.gateway.adapters.registry import ADAPTERS
from posgate.gateway.audit import audit
from posgate.gateway.http.app import build_app
from posgate.gateway.http.context import GatewayContext
from posgate.settings import Settings
from tests.unit.gateway.adapters.standard.cases import NOW, SECRET

OTHER_SECRET = b"whsec_" + base64.b64encode(b"the other tenant's standard webhooks key")
STANDARD_URL = "http://gateway.test/v1/integrations/pos/standard/webhooks/inventory"
CREDENTIALS = [
    {"provider": "standard", "tenant": "tenant-acme", "secrets": [SECRET.decode()]},
    {"provider": "standard", "tenant": "tenant-other", "secrets": [OTHER_SECRET.decode()]},
]


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(database_url)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


class Gateway:
    """An app under test plus what it woke."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], settings: Settings, clock: datetime
    ) -> None:
        self.wakes = 0
        self.now = clock
        ctx = GatewayContext(settings, sessions, ADAPTERS, clock=lambda: self.now, wake_dispatcher=self._wake)
        self.app = build_app(ctx)
        self.sessions = sessions

    def _wake(self) -> None:
        self.wakes += 1

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://gateway.test")

    async def audit_rows(self) -> list[Any]:
        async with self.sessions() as session:
            return list((await session.execute(select(audit).order_by(audit.c.id))).all())


@pytest.fixture
def make_gateway(sessions: async_sessionmaker[AsyncSession]) -> Callable[..., Gateway]:
    def make(clock: datetime = NOW, **overrides: Any) -> Gateway:
        settings = Settings(**{"webhook_credentials": CREDENTIALS, **overrides})
        return Gateway(sessions, settings, clock)

    return make
