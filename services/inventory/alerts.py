"""Threshold crossings and negative-stock flags along a position's sequence of levels."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from posgate.services.inventory.domain import Alert, Level, alert_for
from posgate.services.inventory.journal import AlertEvent
from posgate.services.inventory.tables import stock


@dataclass(frozen=True, slots=True)
class Watch:
    """A position's thresholds and the alert state stored before this transaction."""

    low_threshold: int | None
    out_threshold: int
    alert: Alert
    negative: bool

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Watch:
        """From an `inv_stock` row (as it was before this transaction's level change)."""
        return cls(row["low_threshold"], row["out_threshold"], Alert(row["alert"]), row["negative"])


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
