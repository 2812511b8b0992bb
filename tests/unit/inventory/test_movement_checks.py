"""Which movements `check_movement` refuses, with which reason, and which it lets through."""

from __future__ import annotations

import pytest

from posgate.services.inventory.domain import (
    MAX_ID_LENGTH,
    MAX_KEY_LENGTH,
    MAX_QUANTITY,
    MAX_SKU_LENGTH,
    Kind,
    MovementCommand,
    Position,
    Rejection,
    check_movement,
)

HERE = Position("t", "s1", "sku-1")


def anyone(_tenant: str) -> bool:
    return True


def movement(key: str = "k-1", position: Position = HERE, kind: Kind | None = Kind.SALE, delta: int = -1):
    return MovementCommand(key, position, kind, delta)


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        (movement(key=" "), "INVALID_ARGUMENT:missing_idempotency_key"),
        (movement(key="k" * (MAX_KEY_LENGTH + 1)), "INVALID_ARGUMENT:idempotency_key_too_long"),
        (movement(position=Position("t", "", "sku-1")), "INVALID_ARGUMENT:missing_store"),
        (movement(position=Position("t", "s1", "k" * (MAX_SKU_LENGTH + 1))), "INVALID_ARGUMENT:sku_too_long"),
        (movement(kind=None), "INVALID_ARGUMENT:unknown_kind"),
        # A count or a reservation is not a movement a caller may send.
        (movement(kind=Kind.COUNT), "INVALID_ARGUMENT:unknown_kind"),
        (movement(delta=0), "INVALID_ARGUMENT:zero_delta"),
        (movement(kind=Kind.ADJUSTMENT, delta=MAX_QUANTITY + 1), "INVALID_ARGUMENT:quantity_overflow"),
        (movement(kind=Kind.ADJUSTMENT, delta=-MAX_QUANTITY - 1), "INVALID_ARGUMENT:quantity_overflow"),
        (movement(kind=Kind.SALE, delta=2), "INVALID_ARGUMENT:sign_mismatch"),
        (movement(kind=Kind.RECEIPT, delta=-2), "INVALID_ARGUMENT:sign_mismatch"),
        # The first problem in check order is the one named.
        (movement(key="", kind=None, delta=0), "INVALID_ARGUMENT:missing_idempotency_key"),
        (movement(kind=None, delta=0), "INVALID_ARGUMENT:unknown_kind"),
    ],
)
def test_an_invalid_movement_is_refused_with_what_is_wrong(command: MovementCommand, reason: str) -> None:
    with pytest.raises(Rejection) as refused:
        check_movement(command, anyone)
    assert refused.value.reason == reason


@pytest.mark.parametrize(
    "command",
    [
        movement(),
        movement(kind=Kind.RETURN, delta=3),
        movement(kind=Kind.ADJUSTMENT, delta=-MAX_QUANTITY),
        movement(kind=Kind.ADJUSTMENT, delta=MAX_QUANTITY),
        movement(
            key="k" * MAX_KEY_LENGTH,
            position=Position("t" * MAX_ID_LENGTH, "s" * MAX_ID_LENGTH, "k" * MAX_SKU_LENGTH),
        ),
    ],
)
def test_a_valid_movement_passes(command: MovementCommand) -> None:
    check_movement(command, anyone)


def test_a_valid_movement_of_another_tenant_is_forbidden() -> None:
    with pytest.raises(Rejection) as refused:
        check_movement(movement(), lambda tenant: tenant == "t2")
    assert refused.value.reason == "PERMISSION_DENIED:tenant_forbidden"


def test_an_invalid_movement_of_another_tenant_is_refused_for_what_is_wrong_first() -> None:
    with pytest.raises(Rejection) as refused:
        check_movement(movement(key=""), lambda tenant: tenant == "t2")
    assert refused.value.reason == "INVALID_ARGUMENT:missing_idempotency_key"
