"""Reservation rules: what a reservation is and which reserve commands may be attempted.

Pure: no I/O. `reservations` applies them to the database.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from posgate.services.inventory.domain import (
    MAX_KEY_LENGTH,
    MAX_QUANTITY,
    Position,
    TenantCheck,
    check_key,
    check_position,
    invalid,
)

MAX_LINES = 500
MAX_HOLD = timedelta(hours=24)
# What the servicer uses when a request names no expiry.
DEFAULT_TTL = timedelta(minutes=15)

Lines = tuple[tuple[str, int], ...]


class State(StrEnum):
    """A reservation's state; only ACTIVE holds stock."""

    ACTIVE = "active"
    RELEASED = "released"
    COMMITTED = "committed"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class ReserveCommand:
    """Hold `lines` (SKU, quantity) at one store until `expires_at`; `reservation_id` is the key."""

    tenant_id: str
    store_id: str
    order_id: str
    reservation_id: str
    lines: Lines
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class ReservationView:
    """A reservation as stored; `lines` are sorted by SKU."""

    tenant_id: str
    reservation_id: str
    store_id: str
    order_id: str
    lines: Lines
    state: State
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Shortage:
    """A line that could not be held: what was asked and what was available then."""

    sku: str
    requested: int
    available: int


@dataclass(frozen=True, slots=True)
class ReserveResult:
    """Either the reservation (new or found by its key) or the shortages that refused it."""

    reservation: ReservationView | None
    shortages: tuple[Shortage, ...] = ()


def validate_reserve(
    command: ReserveCommand, may_act_for: TenantCheck, *, now: datetime | None = None
) -> None:
    """Raise a `Rejection` unless the command may be attempted.

    Duplicate SKUs are refused (`duplicate_sku`), not merged: a reservation holds one
    quantity per SKU, and merging would return lines that differ from the request.

    Args:
        command: The reserve command.
        may_act_for: Whether the caller may act for a tenant.
        now: The current time (defaults to the clock); the expiry must lie in (now, now + 24 h].

    """
    check_key(command.reservation_id)
    # The order id is a reference (the ledger's, on commit), so it may be empty.
    if len(command.order_id) > MAX_KEY_LENGTH:
        raise invalid("order_too_long")
    if not command.lines:
        raise invalid("no_lines")
    if len(command.lines) > MAX_LINES:
        raise invalid("too_many_lines")
    for sku, quantity in command.lines:
        check_position(Position(command.tenant_id, command.store_id, sku), may_act_for)
        if quantity <= 0:
            raise invalid("non_positive_quantity")
        if quantity > MAX_QUANTITY:
            raise invalid("quantity_overflow")
    if len({sku for sku, _ in command.lines}) != len(command.lines):
        raise invalid("duplicate_sku")
    if command.expires_at.tzinfo is None:
        raise invalid("naive_expiry")
    moment = now or datetime.now(command.expires_at.tzinfo)
    if command.expires_at <= moment:
        raise invalid("expiry_in_past")
    if command.expires_at > moment + MAX_HOLD:
        raise invalid("expiry_too_far")


def commit_key(reservation_id: str, sku: str) -> str:
    """The ledger key of a committed line; hashed when it would not fit the key column."""
    key = f"{reservation_id}#commit#{sku}"
    if len(key) <= MAX_KEY_LENGTH:
        return key
    return "commit#" + hashlib.sha256(f"{reservation_id}\0{sku}".encode()).hexdigest()
