"""What `WatchStock` reads from the database: snapshots, replays of the change log, gap fills.

Every change becomes one `Item` (`stream_items`, re-exported here) whose `WatchStockResponse`
is built once and shared by every stream that receives it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy import case, null, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from posgate.contracts import inventory
from posgate.services.inventory import convert
from posgate.services.inventory.domain import Level
from posgate.services.inventory.levels import level_from_row
from posgate.services.inventory.sql import is_postgres
from posgate.services.inventory.stream_items import Item, change_item, decode_stock_changed, item_from_change
from posgate.services.inventory.tables import change_blocks, stock, store_sequences

# Re-exported: the streams take the streamed-change type and the reads from this one module.
__all__ = ["Item", "change_item", "decode_stock_changed", "item_from_change"]

pb = inventory.pb
PAGE = 1000
# Beyond this many missed changes of one store a snapshot is cheaper than a replay.
MAX_REPLAY = 10_000
SNAPSHOT_CHUNK = 500
_BLOCK_PAGE = 64  # change-log rows read per query, each the changes of one store and transaction


@dataclass(frozen=True, slots=True)
class InitialRead:
    """One consistent read: the replays, the snapshot and where each store stood.

    Attributes:
        replay: Missed changes of the resumed stores, per store in sequence order.
        levels: Current levels of the other stores (the snapshot), in (store, SKU) order.
        sequences: Last sequence of every store in view (0 for a store without changes).
        snapshot_sequences: The same for the snapshot's stores only.

    """

    replay: list[Item]
    levels: list[Level]
    sequences: dict[str, int]
    snapshot_sequences: dict[str, int]


@asynccontextmanager
async def _consistent(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    # Levels and sequences must come from one snapshot or a change could fall between them.
    # An SQLite transaction is one snapshot already; PostgreSQL's default is per statement.
    async with sessions() as session:
        if is_postgres(session):
            await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        yield session


async def read_initial(
    sessions: async_sessionmaker[AsyncSession],
    tenant_id: str,
    stores: frozenset[str] | None,
    skus: frozenset[str] | None,
    resume: Mapping[str, int],
) -> InitialRead:
    """Read what a new stream starts with: replays for resumable stores, a snapshot of the rest.

    A store resumes when its log still holds every change after the given sequence (and there
    are at most `MAX_REPLAY` of them); otherwise it falls back to the snapshot.
    """
    async with _consistent(sessions) as session:
        sequences = await _sequences(session, tenant_id, stores)
        resumable = await _resumable(session, tenant_id, sequences, resume)
        replay: list[Item] = []
        for store_id in sorted(resumable):
            after, last = resumable[store_id], sequences[store_id]
            if after < last:
                replay.extend(
                    await _changes(
                        session,
                        tenant_id=tenant_id,
                        store_id=store_id,
                        after=after,
                        upto=last,
                        skus=skus,
                        limit=None,
                    )
                )
        snapshot_sequences = {s: n for s, n in sequences.items() if s not in resumable}
        levels = await _levels(
            session,
            tenant_id=tenant_id,
            stores=stores,
            skus=skus,
            snapshot_sequences=snapshot_sequences,
            resumed=resumable,
        )
    return InitialRead(replay, levels, sequences, snapshot_sequences)


async def _sequences(session: AsyncSession, tenant_id: str, stores: frozenset[str] | None) -> dict[str, int]:
    query = select(store_sequences.c.store_id, store_sequences.c.last_sequence).where(
        store_sequences.c.tenant_id == tenant_id
    )
    if stores is not None:
        query = query.where(store_sequences.c.store_id.in_(sorted(stores)))
    found = {row.store_id: int(row.last_sequence) for row in await session.execute(query)}
    return {**dict.fromkeys(stores or (), 0), **found}


async def _resumable(
    session: AsyncSession, tenant_id: str, sequences: Mapping[str, int], resume: Mapping[str, int]
) -> dict[str, int]:
    """The resume points that can be honoured: in view, not ahead of the log, not pruned."""
    wanted = {
        store_id: after
        for store_id, after in resume.items()
        if store_id in sequences
        and 0 <= after <= sequences[store_id]
        and sequences[store_id] - after <= MAX_REPLAY
    }
    behind = [s for s, after in wanted.items() if after < sequences[s]]
    if behind:
        # Each store's oldest logged change: the first of its row with the lowest last sequence,
        # one index probe per store (`min(first_sequence)` would read all of a store's rows).
        blocks = change_blocks.c
        oldest = (
            select(blocks.first_sequence)
            .where(blocks.tenant_id == tenant_id, blocks.store_id == store_sequences.c.store_id)
            .order_by(blocks.last_sequence)
            .limit(1)
            .scalar_subquery()
        )
        query = select(store_sequences.c.store_id, oldest.label("first")).where(
            store_sequences.c.tenant_id == tenant_id, store_sequences.c.store_id.in_(behind)
        )
        rows = await session.execute(query)
        first = {row.store_id: int(row.first) for row in rows if row.first is not None}
        for store_id in behind:
            if first.get(store_id, wanted[store_id] + 2) > wanted[store_id] + 1:
                del wanted[store_id]
    return wanted


async def _levels(
    session: AsyncSession,
    *,
    tenant_id: str,
    stores: frozenset[str] | None,
    skus: frozenset[str] | None,
    snapshot_sequences: Mapping[str, int],
    resumed: Collection[str],
) -> list[Level]:
    conditions = [stock.c.tenant_id == tenant_id]
    if stores is not None:
        if not snapshot_sequences:
            return []
        conditions.append(stock.c.store_id.in_(sorted(snapshot_sequences)))
    elif resumed:
        conditions.append(stock.c.store_id.notin_(sorted(resumed)))
    if skus is not None:
        conditions.append(stock.c.sku.in_(sorted(skus)))
    query = select(stock).where(*conditions).order_by(stock.c.store_id, stock.c.sku)
    # dict(): level_from_row takes a plain mapping (a RowMapping is keyed by Any).
    return [level_from_row(dict(row)) for row in (await session.execute(query)).mappings()]


async def _changes(
    session: AsyncSession,
    *,
    tenant_id: str,
    store_id: str,
    after: int,
    upto: int,
    skus: frozenset[str] | None,
    limit: int | None,
) -> list[Item]:
    """The logged changes with `after < sequence <= upto` (of `skus`), in order, at most `limit`.

    Reads the store's rows a page at a time along the primary key from `after`, and decodes the
    event of each row that holds part of the range. Rows follow each other without gaps, so the
    first one that starts beyond `upto` ends the read: no page reads further than one row past it
    (a filter on `first_sequence` would have PostgreSQL scan every later row of the store).
    """
    found: list[Item] = []
    log = change_blocks.c
    needed = log.first_sequence <= upto
    while limit is None or len(found) < limit:
        query = (
            select(
                log.last_sequence, log.first_sequence, case((needed, log.body), else_=null()).label("body")
            )
            .where(log.tenant_id == tenant_id, log.store_id == store_id, log.last_sequence > after)
            .order_by(log.last_sequence)
            .limit(_BLOCK_PAGE)
        )
        blocks = (await session.execute(query)).all()
        for block in blocks:
            if block.first_sequence > upto:
                return found if limit is None else found[:limit]
            found.extend(_block_items(block.body, after, upto, skus))
        if len(blocks) < _BLOCK_PAGE:
            break
        after = int(blocks[-1].last_sequence)
    return found if limit is None else found[:limit]


def _block_items(body: bytes, after: int, upto: int, skus: frozenset[str] | None) -> list[Item]:
    """The changes of one change-log row (its event's body) with `after < sequence <= upto`."""
    decoded = decode_stock_changed(body)
    if decoded is None:
        raise ValueError("a change-log row holds no inventory.stock_changed event")
    return [
        item for item in decoded[1] if after < item.sequence <= upto and (skus is None or item.sku in skus)
    ]


async def read_changes(
    sessions: async_sessionmaker[AsyncSession],
    tenant_id: str,
    store_id: str,
    *,
    after: int,
    upto: int,
    skus: frozenset[str] | None = None,
    limit: int = PAGE,
) -> list[Item]:
    """At most `limit` logged changes of one store with `after < sequence <= upto`, in order."""
    async with sessions() as session:
        return await _changes(
            session, tenant_id=tenant_id, store_id=store_id, after=after, upto=upto, skus=skus, limit=limit
        )


async def read_store_sequences(
    sessions: async_sessionmaker[AsyncSession], tenant_ids: Iterable[str]
) -> list[tuple[str, str, int]]:
    """(tenant, store, last sequence) of every store of the given tenants."""
    wanted = sorted(set(tenant_ids))
    if not wanted:
        return []
    query = select(store_sequences).where(store_sequences.c.tenant_id.in_(wanted))
    async with sessions() as session:
        rows = (await session.execute(query)).all()
    return [(row.tenant_id, row.store_id, int(row.last_sequence)) for row in rows]


def snapshot_messages(
    levels: Sequence[Level], sequences: Mapping[str, int]
) -> list[inventory.pb.WatchStockResponse]:
    """The snapshot in chunks of `SNAPSHOT_CHUNK` levels; at least one, the last marked complete."""
    starts = range(0, max(len(levels), 1), SNAPSHOT_CHUNK)
    messages = [
        pb.WatchStockResponse(
            snapshot=pb.StockSnapshot(
                levels=[convert.level_to_pb(level) for level in levels[start : start + SNAPSHOT_CHUNK]]
            )
        )
        for start in starts
    ]
    # The sequences ride on the last chunk: a client applies them once it holds every level.
    last = messages[-1].snapshot
    last.store_sequences.update(sequences)
    last.complete = True
    return messages
