"""The inventory domain: movements, counts, levels and the rules they obey.

Pure: imports nothing of grpc, SQLAlchemy or the generated contracts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple

# Far below int64 so that no sum of accepted deltas can overflow a BIGINT column.
MAX_QUANTITY = 10**12
MAX_ID_LENGTH = 64
MAX_SKU_LENGTH = 128
MAX_KEY_LENGTH = 200


class Kind(StrEnum):
    """What moved stock; the ledger's `kind` column and a change's cause."""

    SALE = "sale"
    RETURN = "return"
    RECEIPT = "receipt"
    TRANSFER_IN = "transfer_in"
    TRANSFER_OUT = "transfer_out"
    SHRINK = "shrink"
    ADJUSTMENT = "adjustment"
    COUNT = "count"
    RESERVATION = "reservation"


# Which sign a delta of each movement kind must have: +1, -1, or 0 for either.
SIGNS: dict[Kind, int] = {
    Kind.SALE: -1,
    Kind.RETURN: 1,
    Kind.RECEIPT: 1,
    Kind.TRANSFER_IN: 1,
    Kind.TRANSFER_OUT: -1,
    Kind.SHRINK: -1,
    Kind.ADJUSTMENT: 0,
}


class Alert(StrEnum):
    """The threshold band a position is in; events fire when it changes."""

    OK = "ok"
    LOW = "low"
    OUT = "out"


class Position(NamedTuple):
    """One stock position.

    A named tuple rather than a dataclass: positions key every dictionary of a ledger batch,
    and a tuple's hash and equality run in C (a frozen dataclass's in Python, four times slower).
    """

    tenant_id: str
    store_id: str
    sku: str


class MovementCommand(NamedTuple):
    """A stock delta to apply exactly once (a named tuple, as `Position`: a bulk call builds thousands)."""

    idempotency_key: str
    position: Position
    kind: Kind | None
    delta: int
    occurred_at: datetime | None = None
    reference: str = ""
    provider: str = ""


@dataclass(frozen=True, slots=True)
class CountCommand:
    """An absolute on-hand count with the source's version (or time, as microseconds)."""

    idempotency_key: str
    position: Position
    on_hand: int
    version: int
    provider: str = ""


class Level(NamedTuple):
    """A position's level at one point in its store's sequence (a named tuple, as `Position`)."""

    position: Position
    on_hand: int
    reserved: int
    sequence: int
    updated_at: datetime
    count_version: int = 0

    @property
    def available(self) -> int:
        """On hand minus reserved; negative only when registers sold more than recorded."""
        return self.on_hand - self.reserved


class Rejection(Exception):
    """A movement, count or line that is refused, with its gRPC class and stable code."""

    def __init__(self, status: str, code: str) -> None:
        """`status` is INVALID_ARGUMENT or PERMISSION_DENIED; `code` e.g. `sign_mismatch`."""
        super().__init__(f"{status}:{code}")
        self.status = status
        self.code = code

    @property
    def reason(self) -> str:
        """`INVALID_ARGUMENT:sign_mismatch`: what a per-item result carries."""
        return f"{self.status}:{self.code}"


def invalid(code: str) -> Rejection:
    """An INVALID_ARGUMENT rejection."""
    return Rejection("INVALID_ARGUMENT", code)


TenantCheck = Callable[[str], bool]


_POSITION_FIELDS = (("tenant", MAX_ID_LENGTH), ("store", MAX_ID_LENGTH), ("sku", MAX_SKU_LENGTH))


def check_position(position: Position, may_act_for: TenantCheck) -> None:
    """Raise a `Rejection` unless the position is well-formed and the caller may touch it.

    A well-formed position, the usual case, is recognised in one expression (half the time of
    the loop, for every movement of a bulk call); the loop names what is wrong with the others.
    """
    tenant_id, store_id, sku = position
    well_formed = (
        tenant_id.strip()
        and store_id.strip()
        and sku.strip()
        and len(tenant_id) <= MAX_ID_LENGTH
        and len(store_id) <= MAX_ID_LENGTH
        and len(sku) <= MAX_SKU_LENGTH
    )
    if not well_formed:
        for value, (name, limit) in zip(position, _POSITION_FIELDS, strict=True):
            if not value.strip():
                raise invalid(f"missing_{name}")
            if len(value) > limit:
                raise invalid(f"{name}_too_long")
    if not may_act_for(tenant_id):
        raise Rejection("PERMISSION_DENIED", "tenant_forbidden")


def check_key(key: str) -> None:
    """Raise a `Rejection` unless the idempotency key is present and short enough."""
    if not key.strip():
        raise invalid("missing_idempotency_key")
    if len(key) > MAX_KEY_LENGTH:
        raise invalid("idempotency_key_too_long")


def check_movement(movement: MovementCommand, may_act_for: TenantCheck) -> None:
    """Raise a `Rejection` unless the movement may be applied.

    A valid movement, the usual case, is recognised in one expression (as in `check_position`);
    the checks after it name what is wrong with the others.
    """
    key, kind, delta = movement.idempotency_key, movement.kind, movement.delta
    tenant_id, store_id, sku = movement.position
    valid = (
        key.strip()
        and len(key) <= MAX_KEY_LENGTH
        and tenant_id.strip()
        and store_id.strip()
        and sku.strip()
        and len(tenant_id) <= MAX_ID_LENGTH
        and len(store_id) <= MAX_ID_LENGTH
        and len(sku) <= MAX_SKU_LENGTH
        and 0 < abs(delta) <= MAX_QUANTITY
        and (sign := SIGNS.get(kind)) is not None  # type: ignore[arg-type]  # None: not a kind
        and (not sign or (delta > 0) == (sign > 0))
    )
    if valid and may_act_for(tenant_id):
        return
    check_key(key)
    check_position(movement.position, may_act_for)
    if movement.kind is None:
        raise invalid("unknown_kind")
    if movement.delta == 0:
        raise invalid("zero_delta")
    if abs(movement.delta) > MAX_QUANTITY:
        raise invalid("quantity_overflow")
    sign = SIGNS.get(movement.kind)
    if sign is None:
        raise invalid("unknown_kind")
    if sign and (movement.delta > 0) != (sign > 0):
        raise invalid("sign_mismatch")


def check_count(count: CountCommand, may_act_for: TenantCheck) -> None:
    """Raise a `Rejection` unless the count may be applied."""
    check_key(count.idempotency_key)
    check_position(count.position, may_act_for)
    if count.on_hand < 0:
        raise invalid("negative_count")
    if count.on_hand > MAX_QUANTITY:
        raise invalid("quantity_overflow")
    if count.version <= 0:
        raise invalid("missing_version")


def alert_for(available: int, low_threshold: int | None, out_threshold: int) -> Alert:
    """The band `available` falls in: OUT at or below the out-of-stock threshold, then LOW."""
    if available <= out_threshold:
        return Alert.OUT
    if low_threshold is not None and available <= low_threshold:
        return Alert.LOW
    return Alert.OK
