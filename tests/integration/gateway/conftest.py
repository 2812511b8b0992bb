"""The gateway pipeline on a real database, fed with signed Standard Webhooks deliveries."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from posgate.db.engine import create_engine, session_factory
from posgate.gateway import mappings
from posgate.gateway.adapters.base import InboundRequest
from posgate.gateway.mappings import MappingEntry
from posgate.gateway.tables import MappingKind
from tests.unit.gateway.adapters.standard.cases import CASES, MERCHANT, NOW, SECRET

SECRETS = (SECRET,)
MAPPED = [
    MappingEntry("standard", MERCHANT, MappingKind.TENANT, "", "tenant-acme"),
    MappingEntry("standard", MERCHANT, MappingKind.STORE, "berlin-1", "store-berlin"),
    MappingEntry("standard", MERCHANT, MappingKind.SKU, "TSHIRT-L", "ACME-TS-L"),
    MappingEntry("standard", MERCHANT, MappingKind.SKU, "TSHIRT-M", "ACME-TS-M"),
]


def delivery(
    fixture: str, *, tamper: bool = False, extra_headers: dict[str, str] | None = None
) -> InboundRequest:
    """A fixture as the partner would post it at `NOW`, optionally tampered after signing."""
    body = CASES.body(fixture)
    headers = {**CASES.sign(body, SECRET, NOW), **(extra_headers or {})}
    return CASES.request(CASES.tamper(body) if tamper else body, headers)


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(database_url)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


async def load_mappings(sessions: async_sessionmaker[AsyncSession], entries: list[MappingEntry]) -> None:
    async with sessions() as session:
        await mappings.upsert(session, entries, NOW)
        await session.commit()


async def count(sessions: async_sessionmaker[AsyncSession], table, *where) -> int:
    async with sessions() as session:
        query = select(func.count()).select_from(table)
        for condition in where:
            query = query.where(condition)
        return int((await session.execute(query)).scalar_one())
