"""Applies movements (deltas, exactly once) and counts (by version) inside one transaction.

Lock order, as in `journal`: idempotency claims, then store sequence rows, then stock rows.
"""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from posgate.contracts import inventory
from posgate.db.bulk import is_postgres
from posgate.services.inventory import alerts, bulk, claims, journal
from posgate.services.inventory.domain import Alert, CountCommand, Kind, Level, MovementCommand, Position
from posgate.services.inventory.ledger_rows import claim_key, first_occurrences, ledger_rows, movement_rows
from posgate.services.inventory.levels import level_from_row, read_levels
from posgate.services.inventory.tables import stock


class Outcome(StrEnum):
    """What happened to one movement or count."""

    APPLIED = "applied"
    DUPLICATE = "duplicate"
    STALE = "stale"


class Applied(NamedTuple):
    """The outcome of one movement or count and the level after it (or now, for the rest)."""

    outcome: Outcome
    level: Level | None
    reason: str = ""
    # `level` as its `inventory.stock_changed` event carries it, when the commit built one:
    # a reply copies it instead of filling a message of its own (`journal.record`).
    message: inventory.pb.StockLevel | None = None


async def apply_movements(
    session: AsyncSession, commands: Sequence[MovementCommand], now: datetime
) -> list[Applied]:
    """Apply valid movements exactly once; a key seen before is a duplicate and changes nothing.

    Args:
        session: Inside the caller's transaction (the caller commits).
        commands: Validated movements, in the order they are to be applied.
        now: Commit time recorded on levels and changes.

    Returns:
        One result per command, in order; a duplicate carries the current level.

    """
    fresh, levels, messages = await _apply_new(session, commands, first_occurrences(commands), now)
    if len(fresh) == len(commands):
        # Every movement new, the usual bulk call: its results in order, nothing to look up.
        applied = Outcome.APPLIED
        return [Applied(applied, level, "", message) for level, message in zip(levels, messages, strict=True)]
    results = {
        i: Applied(Outcome.APPLIED, level, "", message)
        for i, level, message in zip(fresh, levels, messages, strict=True)
    }
    rest = [i for i in range(len(commands)) if i not in results]
    current = await read_levels(session, (commands[i].position for i in rest))
    for i in rest:
        results[i] = Applied(Outcome.DUPLICATE, current.get(commands[i].position))
    return [results[i] for i in range(len(commands))]


_Picked = tuple[Sequence[int], list[MovementCommand]]


async def _apply_new(
    session: AsyncSession, commands: Sequence[MovementCommand], firsts: Sequence[int], now: datetime
) -> tuple[Sequence[int], Sequence[Level], Sequence[inventory.pb.StockLevel]]:
    """Claim the keys of `commands[firsts]`; apply those whose keys were new.

    Returns the applied ones' indexes in `commands`, their levels and their events' messages.
    """
    first_commands = commands if len(firsts) == len(commands) else [commands[i] for i in firsts]
    rows = movement_rows(first_commands, now)
    if is_postgres(session):
        stocked = await claims.claim_and_stock(session, first_commands, rows, now)
        fresh, moved = _picked(commands, firsts, stocked.claimed)
        if not fresh:
            return fresh, (), ()
        return fresh, *await _record_movements(session, moved, stocked.last, stocked.rows, now)
    claimed = await claims.claim(session, rows)
    fresh, moved = _picked(
        commands, firsts, [j for j, c in enumerate(first_commands) if claim_key(c) in claimed]
    )
    if not fresh:
        return fresh, (), ()
    return fresh, *await _apply_fresh(session, moved, now)


def _picked(commands: Sequence[MovementCommand], firsts: Sequence[int], new: Sequence[int]) -> _Picked:
    """The claimed commands' indexes in `commands` (`new` holds theirs in `firsts`), and the commands."""
    fresh = firsts if len(new) == len(firsts) else [firsts[j] for j in new]
    return fresh, [commands[i] for i in fresh]


def _totals(fresh: Sequence[MovementCommand]) -> dict[Position, int]:
    totals: dict[Position, int] = defaultdict(int)
    for command in fresh:
        totals[command.position] += command.delta
    return totals


async def _apply_fresh(
    session: AsyncSession, fresh: Sequence[MovementCommand], now: datetime
) -> tuple[list[Level], list[inventory.pb.StockLevel]]:
    """Allocate sequences, update stock rows, then record changes and alerts.

    Not on PostgreSQL: `CLAIM_AND_STOCK` does the first two there, in the claim's statement.
    """
    counts = Counter((c.position.tenant_id, c.position.store_id) for c in fresh)
    first = await journal.allocate(session, counts)
    sequences = claims.numbered(fresh, first)
    last_sequence = {command.position: sequence for command, sequence in zip(fresh, sequences, strict=True)}
    rows = await _add_to_stock(session, _totals(fresh), last_sequence, now)
    last = {store: first[store] + taken - 1 for store, taken in counts.items()}
    return await _record_movements(session, fresh, last, rows, now)


async def _add_to_stock(
    session: AsyncSession, totals: dict[Position, int], last_sequence: dict[Position, int], now: datetime
) -> dict[Position, dict[str, Any]]:
    """Add each position's summed delta to on-hand (creating rows); return the rows after."""
    positions = sorted(totals, key=lambda p: (p.tenant_id, p.store_id, p.sku))
    n = len(positions)
    rows: bulk.Arrays = {
        "tenant_id": [p.tenant_id for p in positions],
        "store_id": [p.store_id for p in positions],
        "sku": [p.sku for p in positions],
        "on_hand": [totals[p] for p in positions],
        "reserved": [0] * n,
        "sequence": [last_sequence[p] for p in positions],
        "count_version": [0] * n,
        "low_threshold": [None] * n,
        "out_threshold": [0] * n,
        "alert": [Alert.OK.value] * n,
        "negative": [False] * n,
        "updated_at": [now] * n,
    }
    after = await bulk.write(session, bulk.ADD_TO_STOCK, rows)
    found = [dict(zip(bulk.STOCK_COLUMNS, row, strict=True)) for row in after]
    return {Position(r["tenant_id"], r["store_id"], r["sku"]): r for r in found}


async def _record_movements(
    session: AsyncSession,
    fresh: Sequence[MovementCommand],
    last: Mapping[tuple[str, str], int],
    rows: Mapping[Position, claims.StockRow],
    now: datetime,
) -> tuple[list[Level], list[inventory.pb.StockLevel]]:
    """Each movement's level, walked back from its position's row after the batch; record them.

    `last` holds each store's number for its last movement of `fresh`; the movements before it
    have the numbers before it, in order. One backward pass numbers the movements, finds each
    one's on-hand (the row's minus the deltas after it) and each position's lowest on-hand,
    which decides whether its alert state needs the full walk (`alerts.calm`). Returns each
    movement's level, and the same as the message its event carries.
    """
    count = len(fresh)
    levels: list[Level] = [None] * count  # type: ignore[list-item]
    changes: list[journal.Change] = [None] * count  # type: ignore[list-item]
    following = dict(last)
    # Per position: on-hand after the movement being walked, reserved, count version, lowest on-hand.
    walked: dict[Position, list[int]] = {}
    # One event per store, its id on each change (`journal.record` keeps them).
    event_ids: dict[tuple[str, str], str] = {}
    for index in range(count - 1, -1, -1):
        command = fresh[index]
        p = command.position
        store = (p.tenant_id, p.store_id)
        sequence = following[store]
        following[store] = sequence - 1
        walk = walked.get(p)
        if walk is None:
            row = rows[p]
            on_hand = int(row["on_hand"])
            walk = walked[p] = [on_hand, row["reserved"], row["count_version"], on_hand]
        after = walk[0]
        walk[0] = after - command.delta
        if after < walk[3]:  # noqa: PLR1730 - a comparison per movement costs less than a call to min()
            walk[3] = after
        level = levels[index] = Level(p, after, walk[1], sequence, now, walk[2])
        event_id = event_ids.get(store) or event_ids.setdefault(store, str(uuid.uuid4()))
        changes[index] = journal.Change(
            level, command.delta, command.kind or Kind.ADJUSTMENT, command.idempotency_key, event_id
        )
    stirred: dict[Position, list[tuple[Level, str]]] = {
        p: [] for p, walk in walked.items() if not alerts.calm(rows[p], walk[3])
    }
    if stirred:
        for level, command in zip(levels, fresh, strict=True):
            if (path := stirred.get(level.position)) is not None:
                path.append((level, command.idempotency_key))
    announced = await alerts.along_paths(session, stirred, rows)
    # Walked by index, each store's changes are in its sequence order.
    messages = await journal.record(session, changes, announced, ordered=True)
    return levels, messages


async def set_counts(session: AsyncSession, commands: Sequence[CountCommand], now: datetime) -> list[Applied]:
    """Apply counts newer than the last applied one per position; record the difference.

    Args:
        session: Inside the caller's transaction (the caller commits).
        commands: Validated counts.
        now: Commit time.

    Returns:
        One result per command: applied, or stale (older, equal, or a repeated key).

    """
    stores = Counter((c.position.tenant_id, c.position.store_id) for c in commands)
    # Lock the stores first (allocating nothing), so the decisions below cannot race.
    await journal.allocate(session, Counter({store: 0 for store in stores}))
    results: list[Applied] = []
    recorded = _Recorded([], [])
    for command in commands:
        results.append(await _set_count(session, command, now, recorded))
    await journal.record(session, recorded.changes, recorded.alerts)
    return results


@dataclass(frozen=True, slots=True)
class _Recorded:
    """What a call's counts changed, recorded once at its end."""

    changes: list[journal.Change]
    alerts: list[journal.AlertEvent]


async def _set_count(
    session: AsyncSession, command: CountCommand, now: datetime, recorded: _Recorded
) -> Applied:
    position = command.position
    current = (await read_levels(session, [position])).get(position)
    if current is not None and command.version <= current.count_version:
        return Applied(Outcome.STALE, current, "stale_version")
    delta = command.on_hand - (current.on_hand if current else 0)
    if not await claims.claim(session, ledger_rows([command], [Kind.COUNT], [delta], now)):
        return Applied(Outcome.STALE, current, "duplicate")
    first = await journal.allocate(session, Counter({(position.tenant_id, position.store_id): 1}))
    sequence = first[(position.tenant_id, position.store_id)]
    rows = await _add_to_stock(session, {position: delta}, {position: sequence}, now)
    await session.execute(
        update(stock)
        .where(
            stock.c.tenant_id == position.tenant_id,
            stock.c.store_id == position.store_id,
            stock.c.sku == position.sku,
        )
        .values(count_version=command.version)
    )
    level = level_from_row({**rows[position], "count_version": command.version})
    before = alerts.Watch.from_row({**rows[position], "on_hand": level.on_hand - delta})
    events, after = alerts.crossings(before, [(level, command.idempotency_key)])
    await alerts.store_watch(session, level, before, after)
    recorded.changes.append(journal.Change(level, delta, Kind.COUNT, command.idempotency_key))
    recorded.alerts.extend(events)
    return Applied(Outcome.APPLIED, level)
