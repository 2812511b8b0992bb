"""Translates between the inventory domain and `posgate.inventory.v1` messages."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from google.protobuf.timestamp_pb2 import Timestamp

from posgate.contracts import inventory
from posgate.services.inventory.domain import CountCommand, Kind, Level, MovementCommand, Position

if TYPE_CHECKING:
    from posgate.services.inventory.reservations import ReservationView

pb = inventory.pb

KIND_FROM_PB: dict[int, Kind] = {
    pb.MOVEMENT_TYPE_SALE: Kind.SALE,
    pb.MOVEMENT_TYPE_RETURN: Kind.RETURN,
    pb.MOVEMENT_TYPE_RECEIPT: Kind.RECEIPT,
    pb.MOVEMENT_TYPE_TRANSFER_IN: Kind.TRANSFER_IN,
    pb.MOVEMENT_TYPE_TRANSFER_OUT: Kind.TRANSFER_OUT,
    pb.MOVEMENT_TYPE_SHRINK: Kind.SHRINK,
    pb.MOVEMENT_TYPE_ADJUSTMENT: Kind.ADJUSTMENT,
}
# A count is recorded as an adjustment; a reservation change moves no on-hand at all.
CAUSE_TO_PB: dict[Kind, int] = {
    **{kind: value for value, kind in KIND_FROM_PB.items()},
    Kind.COUNT: pb.MOVEMENT_TYPE_ADJUSTMENT,
    Kind.RESERVATION: pb.MOVEMENT_TYPE_UNSPECIFIED,
}


CAUSES: dict[Kind, inventory.pb.MovementType.ValueType] = {
    kind: inventory.pb.MovementType.ValueType(value) for kind, value in CAUSE_TO_PB.items()
}
"""The `MovementType` a change of each kind is reported with (`cause_to_pb`, as a lookup)."""


def cause_to_pb(kind: Kind) -> inventory.pb.MovementType.ValueType:
    """The `MovementType` a change of this kind is reported with."""
    return CAUSES[kind]


def timestamp(moment: datetime | None) -> Timestamp | None:
    """A protobuf Timestamp (UTC) or None."""
    return None if moment is None else _utc_stamp(moment)


def _utc_stamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment.astimezone(UTC))
    return stamp


def moment(stamp: Timestamp, present: bool) -> datetime | None:
    """A UTC datetime from a Timestamp field, or None when the field was not set."""
    return stamp.ToDatetime(tzinfo=UTC) if present else None


def position_from_pb(key: inventory.pb.StockKey) -> Position:
    """The domain position of a `StockKey`."""
    return Position(key.tenant_id, key.store_id, key.sku)


def level_to_pb(level: Level) -> inventory.pb.StockLevel:
    """A domain level as `StockLevel`."""
    return fill_level(pb.StockLevel(), level)


def fill_level(target: inventory.pb.StockLevel, level: Level) -> inventory.pb.StockLevel:
    """Write `level` into `target` (an empty message, often a field of the reply) and return it.

    Field by field, in place: about twice as fast as building the message from keywords and
    copying it into its parent, which counts for replies and events of thousands of levels.
    Zeros are left unset: an empty message has them already, and each setting costs upb a call.
    """
    key = target.key
    key.tenant_id, key.store_id, key.sku = level.position
    _fill_numbers(target, level)
    target.updated_at.CopyFrom(_commit_time(level.updated_at))
    return target


def store_level(tenant_id: str, store_id: str, moment: datetime) -> inventory.pb.StockLevel:
    """What every level of one store at one commit time shares: its key but the SKU, and the time.

    `fill_store_level` starts each such level from it.
    """
    shared = pb.StockLevel(updated_at=_commit_time(moment))
    shared.key.tenant_id, shared.key.store_id = tenant_id, store_id
    return shared


def fill_store_level(
    target: inventory.pb.StockLevel, level: Level, shared: inventory.pb.StockLevel, moment: datetime
) -> inventory.pb.StockLevel:
    """`fill_level` for a level of the store and commit time `shared` was made for (`store_level`).

    One merge of `shared` sets the tenant, the store and the time: a quarter less than setting
    them one by one, for each change of an `inventory.stock_changed` event. A level of another
    time (`moment` is `shared`'s) gets its own.
    """
    target.MergeFrom(shared)
    target.key.sku = level.position.sku
    _fill_numbers(target, level)
    if level.updated_at is not moment and level.updated_at != moment:
        target.updated_at.CopyFrom(_commit_time(level.updated_at))
    return target


def _fill_numbers(target: inventory.pb.StockLevel, level: Level) -> None:
    on_hand, reserved = level.on_hand, level.reserved
    target.on_hand, target.available, target.sequence = on_hand, on_hand - reserved, level.sequence
    if reserved:
        target.reserved = reserved
    if level.count_version:
        target.count_version = level.count_version


@functools.lru_cache(maxsize=64)
def _commit_time(moment: datetime) -> Timestamp:
    """The Timestamp of `moment`, remembered: the levels of one commit share its time (callers copy it)."""
    return _utc_stamp(moment)


def movement_from_pb(movement: inventory.pb.Movement, provider: str) -> MovementCommand:
    """A domain movement; an unknown type becomes `kind=None` and is rejected by validation.

    Positional and inline: a bulk call decodes thousands of these.
    """
    key = movement.key
    return MovementCommand(
        movement.idempotency_key,
        Position(key.tenant_id, key.store_id, key.sku),
        KIND_FROM_PB.get(movement.type),
        movement.delta,
        movement.occurred_at.ToDatetime(tzinfo=UTC) if movement.HasField("occurred_at") else None,
        movement.reference,
        (movement.source.provider if movement.HasField("source") else "") or provider,
    )


def count_from_pb(count: inventory.pb.StockCount, provider: str) -> CountCommand:
    """A domain count; without a source version the count time (in microseconds) orders counts."""
    version = count.source_version
    if version == 0 and count.HasField("counted_at"):
        version = count.counted_at.ToMicroseconds()
    source = count.source.provider if count.HasField("source") else ""
    return CountCommand(
        idempotency_key=count.idempotency_key,
        position=position_from_pb(count.key),
        on_hand=count.on_hand,
        version=version,
        provider=source or provider,
    )


def empty_level(tenant_id: str, store_id: str, sku: str) -> inventory.pb.StockLevel:
    """The level of a position inventory has never seen: nothing on hand, sequence 0."""
    return pb.StockLevel(key=pb.StockKey(tenant_id=tenant_id, store_id=store_id, sku=sku))


RESERVATION_STATES: dict[str, int] = {
    "active": pb.RESERVATION_STATE_ACTIVE,
    "released": pb.RESERVATION_STATE_RELEASED,
    "committed": pb.RESERVATION_STATE_COMMITTED,
    "expired": pb.RESERVATION_STATE_EXPIRED,
}


def reservation_to_pb(view: ReservationView) -> inventory.pb.Reservation:
    """A reservation as `Reservation`."""
    return pb.Reservation(
        reservation_id=view.reservation_id,
        tenant_id=view.tenant_id,
        store_id=view.store_id,
        order_id=view.order_id,
        lines=[pb.ReservationLine(sku=sku, quantity=quantity) for sku, quantity in view.lines],
        state=inventory.pb.ReservationState.ValueType(RESERVATION_STATES[view.state]),
        created_at=timestamp(view.created_at),
        expires_at=timestamp(view.expires_at),
    )
