"""What the change log holds, read back change by change (tests only)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from posgate.contracts import inventory
from posgate.services.inventory import convert
from posgate.services.inventory.domain import Kind
from posgate.services.inventory.stream_log import decode_stock_changed
from posgate.services.inventory.tables import change_blocks


class Logged(NamedTuple):
    """One logged change, as its change-log row's event carries it."""

    store_id: str
    sequence: int
    sku: str
    on_hand: int
    delta: int
    event_id: str
    cause: int
    committed_at: datetime
    reserved: int
    count_version: int

    @property
    def kind(self) -> str:
        """The cause as a movement kind's name; a reservation's change has no movement type."""
        if self.cause == inventory.pb.MOVEMENT_TYPE_UNSPECIFIED:
            return Kind.RESERVATION.value
        return convert.KIND_FROM_PB[self.cause].value


async def logged_changes(
    sessions: async_sessionmaker[AsyncSession], tenant_id: str | None = None
) -> list[Logged]:
    """Every logged change (of `tenant_id`), in (store, sequence) order.

    Also checks each row against its event: its sequence range is exactly the changes it holds,
    in order, of its own tenant and store.
    """
    query = select(change_blocks)
    if tenant_id is not None:
        query = query.where(change_blocks.c.tenant_id == tenant_id)
    async with sessions() as session:
        rows = (await session.execute(query)).all()
    found: list[Logged] = []
    for row in rows:
        decoded = decode_stock_changed(row.body)
        assert decoded is not None
        tenant, items = decoded
        assert tenant == row.tenant_id
        assert [item.sequence for item in items] == list(range(row.first_sequence, row.last_sequence + 1))
        for item in items:
            change = item.response.change
            level = change.level
            assert (level.key.tenant_id, level.key.store_id) == (row.tenant_id, row.store_id)
            found.append(
                Logged(
                    level.key.store_id,
                    level.sequence,
                    level.key.sku,
                    level.on_hand,
                    change.delta,
                    change.event_id,
                    change.cause,
                    level.updated_at.ToDatetime(tzinfo=UTC),
                    level.reserved,
                    level.count_version,
                )
            )
    return sorted(found, key=lambda c: (c.store_id, c.sequence))
