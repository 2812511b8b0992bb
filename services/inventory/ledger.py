"""Applies movements (deltas, exactly once) and counts (by version) inside one transaction.

Lock order, as in `journal`: idempotency claims, then store sequence rows, then stock rows.
"""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from posgate.services.inventory import alerts, journal
from posgate.services.inventory.domain import Alert, CountCommand, Kind, Level, MovementCommand, Position
from posgate.services.inventory.levels import level_from_row, read_levels
from posgate.services.inventory.sql import upsert
from posgate.services.inventory.tables import movements, stock


class Outcome(StrEnum):
    """What happened to one movement or count."""

    APPLIED = "applied"
    DUPLICATE = "duplicate"
    STALE = "stale"


@dataclass(frozen=True, slots=True)
class Applied:
    """The outcome of one movement or count and the level after it (or now, for the rest)."""

    outcome: Outcome
    level: Level | None
    reason: str = ""


def _ledger_row(
    command: MovementCommand | CountCommand, kind: Kind, delta: int, now: datetime
) -> dict[str, object]:
    position = command.position
    return {
        "tenant_id": position.tenant_id,
        "idempotency_key": command.idempotency_key,
        "store_id": position.store_id,
        "sku": position.sku,
        "kind": kind.value,
        "delta": delta,
        "reference": getattr(command, "reference", ""),
        "provider": command.provider,
        "occurred_at": getattr(command, "occurred_at", None),
        "recorded_at": now,
    }


async def _claim(session: AsyncSession, rows: list[dict[str, object]]) -> set[tuple[str, str]]:
    """Insert ledger rows whose (tenant, key) is new; return the keys that were new."""
    if not rows:
        return set()
    statement = (
        upsert(session, movements)
        .on_conflict_do_nothing(index_elements=["tenant_id", "idempotency_key"])
        .returning(movements.c.tenant_id, movements.c.idempotency_key)
    )
    result = await session.execute(statement, rows)
    return {(row.tenant_id, row.idempotency_key) for row in result}


def _first_occurrences(commands: Sequence[MovementCommand]) -> list[int]:
    seen: set[tuple[str, str]] = set()
    firsts: list[int] = []
    for index, command in enumerate(commands):
        key = (command.position.tenant_id, command.idempotency_key)
        if key not in seen:
            seen.add(key)
            firsts.append(index)
    return firsts


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
    firsts = _first_occurrences(commands)
    rows = [
        _ledger_row(commands[i], commands[i].kind or Kind.ADJUSTMENT, commands[i].delta, now) for i in firsts
    ]
    claimed = await _claim(session, rows)
    fresh = [i for i in firsts if (commands[i].position.tenant_id, commands[i].idempotency_key) in claimed]
    results: dict[int, Applied] = {}
    if fresh:
        levels = await _apply_fresh(session, [commands[i] for i in fresh], now)
        results.update({i: Applied(Outcome.APPLIED, level) for i, level in zip(fresh, levels, strict=True)})
    rest = [i for i in range(len(commands)) if i not in results]
    current = await read_levels(session, (commands[i].position for i in rest))
    for i in rest:
        results[i] = Applied(Outcome.DUPLICATE, current.get(commands[i].position))
    return [results[i] for i in range(len(commands))]


async def _apply_fresh(session: AsyncSession, fresh: Sequence[MovementCommand], now: datetime) -> list[Level]:
    """Allocate sequences, update stock rows, then record changes and alerts."""
    per_store = Counter((c.position.tenant_id, c.position.store_id) for c in fresh)
    first = await journal.allocate(session, per_store)
    sequences: list[int] = []
    offset: Counter[tuple[str, str]] = Counter()
    for command in fresh:
        store = (command.position.tenant_id, command.position.store_id)
        sequences.append(first[store] + offset[store])
        offset[store] += 1
    totals: dict[Position, int] = defaultdict(int)
    last_sequence: dict[Position, int] = {}
    for command, sequence in zip(fresh, sequences, strict=True):
        totals[command.position] += command.delta
        last_sequence[command.position] = sequence
    rows = await _add_to_stock(session, totals, last_sequence, now)
    return await _record_movements(
        session, fresh=fresh, sequences=sequences, totals=totals, rows=rows, now=now
    )


async def _add_to_stock(
    session: AsyncSession, totals: dict[Position, int], last_sequence: dict[Position, int], now: datetime
) -> dict[Position, dict[str, object]]:
    """Add each position's summed delta to on-hand (creating rows); return the rows after."""
    values = [
        {
            "tenant_id": p.tenant_id,
            "store_id": p.store_id,
            "sku": p.sku,
            "on_hand": totals[p],
            "reserved": 0,
            "sequence": last_sequence[p],
            "count_version": 0,
            "low_threshold": None,
            "out_threshold": 0,
            "alert": Alert.OK.value,
            "negative": False,
            "updated_at": now,
        }
        for p in sorted(totals, key=lambda p: (p.tenant_id, p.store_id, p.sku))
    ]
    insert = upsert(session, stock)
    statement = insert.on_conflict_do_update(
        index_elements=["tenant_id", "store_id", "sku"],
        set_={
            "on_hand": stock.c.on_hand + insert.excluded.on_hand,
            "sequence": insert.excluded.sequence,
            "updated_at": insert.excluded.updated_at,
        },
    ).returning(*stock.c)
    result = await session.execute(statement, values)
    return {Position(r["tenant_id"], r["store_id"], r["sku"]): dict(r) for r in result.mappings()}


async def _record_movements(
    session: AsyncSession,
    *,
    fresh: Sequence[MovementCommand],
    sequences: Sequence[int],
    totals: dict[Position, int],
    rows: dict[Position, dict[str, object]],
    now: datetime,
) -> list[Level]:
    """Walk each position from its level before the batch; record every step as a change."""
    running = {p: int(str(rows[p]["on_hand"])) - totals[p] for p in totals}
    steps: dict[Position, list[tuple[Level, str]]] = defaultdict(list)
    changes: list[journal.Change] = []
    levels: list[Level] = []
    for command, sequence in zip(fresh, sequences, strict=True):
        p = command.position
        running[p] += command.delta
        after = level_from_row({**rows[p], "on_hand": running[p], "sequence": sequence, "updated_at": now})
        levels.append(after)
        steps[p].append((after, command.idempotency_key))
        changes.append(
            journal.Change(
                after, command.delta, command.kind or Kind.ADJUSTMENT, command.idempotency_key, _event_id()
            )
        )
    announced: list[journal.AlertEvent] = []
    for p, path in steps.items():
        before = alerts.Watch.from_row(rows[p])
        events, after_watch = alerts.crossings(before, path)
        announced.extend(events)
        await alerts.store_watch(session, path[-1][0], before, after_watch)
    await journal.record(session, changes, announced)
    return levels


def _event_id() -> str:
    return str(uuid.uuid4())


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
    for command in commands:
        results.append(await _set_count(session, command, now))
    return results


async def _set_count(session: AsyncSession, command: CountCommand, now: datetime) -> Applied:
    position = command.position
    current = (await read_levels(session, [position])).get(position)
    if current is not None and command.version <= current.count_version:
        return Applied(Outcome.STALE, current, "stale_version")
    delta = command.on_hand - (current.on_hand if current else 0)
    if not await _claim(session, [_ledger_row(command, Kind.COUNT, delta, now)]):
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
    row = {**rows[position], "count_version": command.version}
    level = await _record_count(session, command, delta, row, now)
    return Applied(Outcome.APPLIED, level)


async def _record_count(
    session: AsyncSession, command: CountCommand, delta: int, row: dict[str, object], now: datetime
) -> Level:
    level = level_from_row(row)
    before_row = {**row, "on_hand": level.on_hand - delta}
    before = alerts.Watch.from_row(before_row)
    events, after = alerts.crossings(before, [(level, command.idempotency_key)])
    await alerts.store_watch(session, level, before, after)
    await journal.record(
        session, [journal.Change(level, delta, Kind.COUNT, command.idempotency_key, _event_id())], events
    )
    return level
