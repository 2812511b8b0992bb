"""Which positions `check_position` refuses, with which reason, and which it lets through."""

from __future__ import annotations

import pytest

from posgate.services.inventory.domain import (
    MAX_ID_LENGTH,
    MAX_SKU_LENGTH,
    Position,
    Rejection,
    check_position,
)


def anyone(_tenant: str) -> bool:
    return True


@pytest.mark.parametrize(
    ("position", "reason"),
    [
        (Position("", "s1", "sku-1"), "INVALID_ARGUMENT:missing_tenant"),
        (Position("t", " ", "sku-1"), "INVALID_ARGUMENT:missing_store"),
        (Position("t", "s1", "\t"), "INVALID_ARGUMENT:missing_sku"),
        (Position("t" * (MAX_ID_LENGTH + 1), "s1", "sku-1"), "INVALID_ARGUMENT:tenant_too_long"),
        (Position("t", "s" * (MAX_ID_LENGTH + 1), "sku-1"), "INVALID_ARGUMENT:store_too_long"),
        (Position("t", "s1", "k" * (MAX_SKU_LENGTH + 1)), "INVALID_ARGUMENT:sku_too_long"),
        # The first problem in field order is the one named.
        (Position(" ", "s" * (MAX_ID_LENGTH + 1), ""), "INVALID_ARGUMENT:missing_tenant"),
    ],
)
def test_a_malformed_position_is_refused_with_what_is_wrong(position: Position, reason: str) -> None:
    with pytest.raises(Rejection) as refused:
        check_position(position, anyone)
    assert refused.value.reason == reason


def test_a_position_at_the_length_limits_is_well_formed() -> None:
    check_position(Position("t" * MAX_ID_LENGTH, "s" * MAX_ID_LENGTH, "k" * MAX_SKU_LENGTH), anyone)


def test_a_well_formed_position_of_another_tenant_is_forbidden() -> None:
    with pytest.raises(Rejection) as refused:
        check_position(Position("t2", "s1", "sku-1"), lambda tenant: tenant == "t1")
    assert refused.value.reason == "PERMISSION_DENIED:tenant_forbidden"
