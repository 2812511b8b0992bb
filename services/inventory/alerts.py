"""Threshold crossings and negative-stock flags along a position's sequence of levels."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from posgate.services.inventory.domain import Alert, Level, Position, alert_for
from posgate.services.inventory.journal import AlertEvent
from posgate.services.inventory.tables import stock

_ALERTS = {alert.value: alert for alert in Alert}


class Watch(NamedTuple):
    """A position's thresholds and the alert state stored before this transaction.

    A named tuple, as `Level`: built in C, where a frozen dataclass's `__init__` runs in Python.
    """

    low_threshold: int | None
    out_threshold: int
    alert: Alert
    negative: bool

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Watch:
        """From an `inv_stock` row (as it was before this transaction's level change)."""
        return cls(row["low_threshold"], row["out_threshold"], _ALERTS[row["alert"]], row["negative"])


def unremarkable(row: Mapping[str, Any], levels: Sequence[tuple[Level, str]]) -> bool:
    """Whether `levels` leave nothing to announce or store (the row's band and flag stay as they are).

    True when the row is in the OK band and not flagged negative, and every level stays above
    both thresholds and at or above zero. The common case of a bulk call, decided without
    building a `Watch`; `crossings` agrees.
    """
    if row["alert"] != Alert.OK or row["negative"]:
        return False
    low, out = row["low_threshold"], row["out_threshold"]
    floor = out if low is None else max(low, out)
    return all(level.on_hand >= 0 and level.available > floor for level, _ in levels)


_OK = Alert.OK.value


def calm(row: Mapping[str, Any], lowest_on_hand: int) -> bool:
    """`unremarkable` for a path whose levels keep the row's reserved, from its lowest on-hand alone.

    Movements change on-hand, never reserved: along a bulk call's path of one position every
    level's available is its on-hand minus the same reserved, so the lowest level decides.
    """
    if row["alert"] != _OK or row["negative"]:
        return False
    low, out = row["low_threshold"], row["out_threshold"]
    floor = out if low is None else max(low, out)
    return lowest_on_hand >= 0 and lowest_on_hand - row["reserved"] > floor


def crossings(watch: Watch, levels: Sequence[tuple[Level, str]]) -> tuple[list[AlertEvent], Watch]:
    """Events for every threshold crossing and new negative on-hand along `levels`.

    Falling into OUT announces out-of-stock; leaving OUT announces back-in-stock (and
    low-stock too when it lands in LOW); falling from OK into LOW announces low-stock.

    Args:
        watch: State before the first level.
        levels: Successive levels of one position with the idempotency key that produced each.

    Returns:
        The events in order, and the state after the last level.

    """
    found: list[AlertEvent] = []
    band, negative = watch.alert, watch.negative
    for level, key in levels:
        new_band = alert_for(level.available, watch.low_threshold, watch.out_threshold)
        found.extend(_announcements(watch, band, new_band, level))
        band = new_band
        if level.on_hand < 0 and not negative:
            found.append(AlertEvent(level, None, 0, negative_key=key))
        negative = level.on_hand < 0
    return found, Watch(watch.low_threshold, watch.out_threshold, band, negative)


def _announcements(watch: Watch, old: Alert, new: Alert, level: Level) -> list[AlertEvent]:
    """`AlertEvent.alert` names the event: OUT out-of-stock, LOW low-stock, OK back-in-stock."""
    if new is old:
        return []
    if new is Alert.OUT:
        return [AlertEvent(level, Alert.OUT, watch.out_threshold)]
    announced = [AlertEvent(level, Alert.OK, watch.out_threshold)] if old is Alert.OUT else []
    if new is Alert.LOW and watch.low_threshold is not None:
        announced.append(AlertEvent(level, Alert.LOW, watch.low_threshold))
    return announced


async def along_paths(
    session: AsyncSession,
    paths: Mapping[Position, Sequence[tuple[Level, str]]],
    rows: Mapping[Position, Mapping[str, Any]],
) -> list[AlertEvent]:
    """The crossings along each position's levels in this transaction, storing changed bands and flags.

    `rows` holds each position's stock row with the alert columns as they were before.
    """
    announced: list[AlertEvent] = []
    for position, path in paths.items():
        row = rows[position]
        if unremarkable(row, path):
            continue
        before = Watch.from_row(row)
        events, after = crossings(before, path)
        announced.extend(events)
        await store_watch(session, path[-1][0], before, after)
    return announced


async def store_watch(session: AsyncSession, level: Level, before: Watch, after: Watch) -> None:
    """Persist the alert band and negative flag when they changed."""
    if (before.alert, before.negative) == (after.alert, after.negative):
        return
    position = level.position
    await session.execute(
        update(stock)
        .where(
            stock.c.tenant_id == position.tenant_id,
            stock.c.store_id == position.store_id,
            stock.c.sku == position.sku,
        )
        .values(alert=after.alert.value, negative=after.negative)
    )
