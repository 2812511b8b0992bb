"""Claims movements' idempotency keys and numbers the claimed ones in their stores' sequences.

Part of `ledger`'s transaction; the lock order is `journal`'s.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from posgate.db import raw
from posgate.db.bulk import pick
from posgate.services.inventory import bulk
from posgate.services.inventory.domain import Alert, MovementCommand, Position


async def claim(session: AsyncSession, rows: bulk.Arrays) -> set[tuple[str, str]]:
    """Insert ledger rows whose (tenant, key) is new; return the keys that were new."""
    claimed = await bulk.write(session, bulk.CLAIM_MOVEMENTS, rows)
    return {(row[0], row[1]) for row in claimed}


StockRow = Mapping[str, Any]
"""A stock row after this transaction's update, read by column name (a dict, or asyncpg's record)."""


@dataclass(frozen=True, slots=True)
class Stocked:
    """What `CLAIM_AND_STOCK` did: the claimed rows (indexes), each store's last sequence, the stock rows.

    A store's claimed movements are numbered up to its `last` number in the order given.
    """

    claimed: Sequence[int]
    last: dict[tuple[str, str], int]
    rows: dict[Position, StockRow]


async def claim_and_stock(
    session: AsyncSession, commands: Sequence[MovementCommand], rows: bulk.Arrays, now: datetime
) -> Stocked:
    """PostgreSQL: claim, number and add to stock in one statement (`bulk.CLAIM_AND_STOCK`).

    The statement numbers each store's claimed movements in the order given, up to the store's
    last number it returns (`Stocked.last`), from which the caller numbers them too.
    """
    statement = pick(len(commands), *bulk.CLAIM_AND_STOCK)
    found = await raw.fetch(session, statement, {**rows, "alert_ok": Alert.OK.value, "now": now})
    last: dict[tuple[str, str], int] = {}
    unclaimed: set[int] = set()
    stock_rows: dict[Position, StockRow] = {}
    for row in found:
        kind = row[0]
        if kind == 1:
            # The record itself: its columns carry the stock columns' names (a dict per row cost
            # about a microsecond).
            stock_rows[Position(row[1], row[2], row[3])] = row
        elif kind == 0:
            last[(row[1], row[2])] = row[6]
        else:
            unclaimed.add(row[4] - 1)
    if not unclaimed:
        return Stocked(range(len(commands)), last, stock_rows)
    return Stocked([j for j in range(len(commands)) if j not in unclaimed], last, stock_rows)


def numbered(fresh: Iterable[MovementCommand], first: Mapping[tuple[str, str], int]) -> list[int]:
    """Each movement's sequence: its store's `first` number, then the next ones, in the order given."""
    following = dict(first)
    sequences: list[int] = []
    for command in fresh:
        store = (command.position.tenant_id, command.position.store_id)
        sequences.append(following[store])
        following[store] += 1
    return sequences
