"""Low-stock and out-of-stock thresholds per position."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from posgate.contracts import inventory
from posgate.services.inventory import alerts, journal
from posgate.services.inventory.convert import position_from_pb
from posgate.services.inventory.domain import (
    MAX_QUANTITY,
    Alert,
    Position,
    TenantCheck,
    check_position,
    invalid,
)
from posgate.services.inventory.levels import level_from_row
from posgate.services.inventory.sql import upsert
from posgate.services.inventory.tables import stock


@dataclass(frozen=True, slots=True)
class ThresholdSetting:
    """Thresholds of one position; `low=None` means no low-stock band."""

    position: Position
    low: int | None
    out: int


def from_pb(threshold: inventory.pb.Threshold) -> ThresholdSetting:
    """A low-stock threshold at or below the out-of-stock one means no low-stock band."""
    low = threshold.low_stock if threshold.low_stock > threshold.out_of_stock else None
    return ThresholdSetting(position_from_pb(threshold.key), low, threshold.out_of_stock)


def validate(setting: ThresholdSetting, may_act_for: TenantCheck) -> None:
    """Raise a `Rejection` for a malformed setting or a tenant the caller may not touch."""
    check_position(setting.position, may_act_for)
    if setting.out < 0:
        raise invalid("negative_threshold")
    if max(setting.out, setting.low or 0) > MAX_QUANTITY:
        raise invalid("quantity_overflow")


async def set_thresholds(session: AsyncSession, settings: Sequence[ThresholdSetting], now: datetime) -> None:
    """Store thresholds (creating empty positions) and announce a band the position is now in."""
    announced: list[journal.AlertEvent] = []
    for setting in sorted(
        settings, key=lambda s: (s.position.tenant_id, s.position.store_id, s.position.sku)
    ):
        row = await _store(session, setting, now)
        level = level_from_row(row)
        before = alerts.Watch(setting.low, setting.out, Alert(str(row["alert"])), bool(row["negative"]))
        events, after = alerts.crossings(before, [(level, "")])
        announced.extend(event for event in events if event.alert is not None)
        await alerts.store_watch(session, level, before, after)
    await journal.record(session, [], announced)


async def _store(session: AsyncSession, setting: ThresholdSetting, now: datetime) -> dict[str, object]:
    p = setting.position
    insert = upsert(session, stock).values(
        tenant_id=p.tenant_id,
        store_id=p.store_id,
        sku=p.sku,
        on_hand=0,
        reserved=0,
        sequence=0,
        count_version=0,
        low_threshold=setting.low,
        out_threshold=setting.out,
        alert=Alert.OK.value,
        negative=False,
        updated_at=now,
    )
    statement = insert.on_conflict_do_update(
        index_elements=["tenant_id", "store_id", "sku"],
        set_={"low_threshold": setting.low, "out_threshold": setting.out},
    ).returning(*stock.c)
    return dict((await session.execute(statement)).mappings().one())
