"""Moving the reserved and on-hand quantities of stock rows, and recording each move as a change.

Reserve, release and commit (`reservations`) all shift existing stock rows under the lock order
of `journal` (store sequence row first, then stock rows by SKU) and record one change per line,
with its threshold crossings. These are the shared steps; they never commit.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from posgate.services.inventory import alerts, journal
from posgate.services.inventory.domain import Kind, Level, Position
from posgate.services.inventory.levels import level_from_row
from posgate.services.inventory.tables import stock

# A stock row after an update, the on-hand delta, the cause and the key a change records.
Step = tuple[dict[str, Any], int, Kind, str]


async def allocate(session: AsyncSession, tenant_id: str, store_id: str, n: int) -> int:
    """The first of `n` new sequence numbers of the store (its row stays locked until commit)."""
    first = await journal.allocate(session, Counter({(tenant_id, store_id): n}))
    return first[(tenant_id, store_id)]


async def shift(
    session: AsyncSession,
    position: Position,
    *,
    reserved: int,
    sequence: int,
    now: datetime,
    on_hand: int = 0,
    guard: bool = False,
) -> dict[str, Any] | None:
    """Add to reserved and on-hand of an existing row; with `guard`, only if that much is available."""
    statement = (
        update(stock)
        .where(
            stock.c.tenant_id == position.tenant_id,
            stock.c.store_id == position.store_id,
            stock.c.sku == position.sku,
        )
        .values(
            reserved=stock.c.reserved + reserved,
            on_hand=stock.c.on_hand + on_hand,
            sequence=sequence,
            updated_at=now,
        )
        .returning(*stock.c)
    )
    if guard:
        statement = statement.where(stock.c.on_hand - stock.c.reserved >= reserved)
    row = (await session.execute(statement)).mappings().one_or_none()
    return None if row is None else {str(key): value for key, value in row.items()}


async def record_steps(session: AsyncSession, steps: Sequence[Step]) -> list[Level]:
    """Record each (row after, delta, cause, key) as a change, with its threshold crossings."""
    changes: list[journal.Change] = []
    announced: list[journal.AlertEvent] = []
    for row, delta, cause, key in steps:
        level = level_from_row(row)
        # The update left the alert columns alone: they still describe the level before it.
        before = alerts.Watch.from_row(row)
        found, after = alerts.crossings(before, [(level, key)])
        announced.extend(found)
        await alerts.store_watch(session, level, before, after)
        changes.append(journal.Change(level, delta, cause, key))
    await journal.record(session, changes, announced)
    return [change.level for change in changes]
