"""Reads current levels and turns stock rows into domain levels."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import and_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from posgate.services.inventory.domain import Level, Position
from posgate.services.inventory.tables import stock


def level_from_row(row: Mapping[Any, Any]) -> Level:
    """A domain level from an `inv_stock` row mapping."""
    return Level(
        position=Position(row["tenant_id"], row["store_id"], row["sku"]),
        on_hand=row["on_hand"],
        reserved=row["reserved"],
        sequence=row["sequence"],
        updated_at=row["updated_at"],
        count_version=row["count_version"],
    )


async def read_levels(session: AsyncSession, positions: Iterable[Position]) -> dict[Position, Level]:
    """Current levels of the given positions that exist."""
    wanted = sorted(set(positions), key=lambda p: (p.tenant_id, p.store_id, p.sku))
    found: dict[Position, Level] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        keys = [(p.tenant_id, p.store_id, p.sku) for p in chunk]
        statement = select(stock).where(tuple_(stock.c.tenant_id, stock.c.store_id, stock.c.sku).in_(keys))
        for row in (await session.execute(statement)).mappings():
            level = level_from_row(row)
            found[level.position] = level
    return found


async def query_levels(
    session: AsyncSession, tenant_id: str, store_ids: Sequence[str], skus: Sequence[str]
) -> list[Level]:
    """Levels of a tenant, optionally narrowed to stores and SKUs, in (store, SKU) order."""
    conditions = [stock.c.tenant_id == tenant_id]
    if store_ids:
        conditions.append(stock.c.store_id.in_(list(store_ids)))
    if skus:
        conditions.append(stock.c.sku.in_(list(skus)))
    statement = select(stock).where(and_(*conditions)).order_by(stock.c.store_id, stock.c.sku)
    return [level_from_row(row) for row in (await session.execute(statement)).mappings()]
