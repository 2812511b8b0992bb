"""Which reserve commands are refused before they touch the database, and why."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from posgate.services.inventory.domain import MAX_QUANTITY, Rejection
from posgate.services.inventory.reservations import (
    MAX_LINES,
    ReserveCommand,
    commit_key,
    validate_reserve,
)

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
GOOD = ReserveCommand("t1", "s1", "order-1", "res-1", (("A", 1), ("B", 2)), NOW + timedelta(minutes=15))


def anyone(_tenant: str) -> bool:
    return True


def code_of(command: ReserveCommand, may_act_for=anyone) -> str:
    with pytest.raises(Rejection) as caught:
        validate_reserve(command, may_act_for, now=NOW)
    return caught.value.reason


def test_a_well_formed_command_passes() -> None:
    validate_reserve(GOOD, anyone, now=NOW)
    validate_reserve(replace(GOOD, expires_at=NOW + timedelta(hours=24)), anyone, now=NOW)
    validate_reserve(replace(GOOD, order_id=""), anyone, now=NOW)  # a reference, not a key


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"reservation_id": " "}, "INVALID_ARGUMENT:missing_idempotency_key"),
        ({"reservation_id": "r" * 201}, "INVALID_ARGUMENT:idempotency_key_too_long"),
        ({"order_id": "o" * 201}, "INVALID_ARGUMENT:order_too_long"),
        ({"lines": ()}, "INVALID_ARGUMENT:no_lines"),
        ({"lines": tuple((f"s{i}", 1) for i in range(MAX_LINES + 1))}, "INVALID_ARGUMENT:too_many_lines"),
        ({"lines": (("A", 0),)}, "INVALID_ARGUMENT:non_positive_quantity"),
        ({"lines": (("A", -2),)}, "INVALID_ARGUMENT:non_positive_quantity"),
        ({"lines": (("A", MAX_QUANTITY + 1),)}, "INVALID_ARGUMENT:quantity_overflow"),
        ({"lines": (("A", 1), ("A", 2))}, "INVALID_ARGUMENT:duplicate_sku"),
        ({"lines": (("", 1),)}, "INVALID_ARGUMENT:missing_sku"),
        ({"lines": (("x" * 129, 1),)}, "INVALID_ARGUMENT:sku_too_long"),
        ({"store_id": ""}, "INVALID_ARGUMENT:missing_store"),
        ({"tenant_id": ""}, "INVALID_ARGUMENT:missing_tenant"),
        ({"expires_at": NOW}, "INVALID_ARGUMENT:expiry_in_past"),
        ({"expires_at": NOW - timedelta(seconds=1)}, "INVALID_ARGUMENT:expiry_in_past"),
        ({"expires_at": NOW + timedelta(hours=24, seconds=1)}, "INVALID_ARGUMENT:expiry_too_far"),
        ({"expires_at": datetime(2026, 11, 23, 12, 5)}, "INVALID_ARGUMENT:naive_expiry"),
    ],
)
def test_malformed_commands_are_refused(change: dict[str, object], reason: str) -> None:
    assert code_of(replace(GOOD, **change)) == reason  # type: ignore[arg-type]


def test_another_tenant_is_forbidden() -> None:
    assert code_of(GOOD, lambda tenant: tenant == "t2") == "PERMISSION_DENIED:tenant_forbidden"


def test_commit_keys_fit_the_ledger_and_stay_distinct() -> None:
    assert commit_key("res-1", "A") == "res-1#commit#A"
    long_id = "r" * 200
    assert len(commit_key(long_id, "A")) <= 200
    assert commit_key(long_id, "A") != commit_key(long_id, "B")
    assert commit_key(long_id, "A") == commit_key(long_id, "A")
