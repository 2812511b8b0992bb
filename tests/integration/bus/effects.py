"""The table test handlers write their effect to, so tests can count effects exactly."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from posgate.bus.ports import IncomingEvent

test_metadata = sa.MetaData()

effects = sa.Table(
    "test_bus_effects",
    test_metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("consumer", sa.String(128), nullable=False),
    sa.Column("event_id", sa.String(64), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
)


async def create_effects_table(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.run_sync(test_metadata.create_all)


def recording_handler(consumer: str):
    """A handler whose only effect is one row per applied event."""

    async def handle(event: IncomingEvent, session: AsyncSession) -> None:
        await session.execute(
            sa.insert(effects).values(consumer=consumer, event_id=event.event_id, attempt=event.attempt)
        )

    return handle


async def effect_rows(engine: AsyncEngine) -> list[tuple[str, str, int]]:
    """Every effect in the order it was applied.

    By id: without ORDER BY, PostgreSQL returns heap order, which concurrent inserters (each
    backend fills its own target page) do not keep in insertion order.
    """
    query = sa.select(effects.c.consumer, effects.c.event_id, effects.c.attempt).order_by(effects.c.id)
    async with engine.connect() as connection:
        rows = await connection.execute(query)
        return [tuple(row) for row in rows]
