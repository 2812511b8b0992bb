"""Validation profiles turn adapter warnings into reject / warn / off decisions."""

from __future__ import annotations

import pytest

from posgate.contracts import inventory
from posgate.gateway.adapters.base import CanonicalCommand
from posgate.gateway.profiles import (
    Decision,
    Rule,
    ValidationProfile,
    apply_profile,
    default_profile,
    rule_of,
)


def command(key: str, *warnings: str) -> CanonicalCommand:
    message = inventory.pb.ApplyMovementsRequest()
    return CanonicalCommand("svc/Method", message, key, "tenant-acme", "store-1", warnings=warnings)


@pytest.mark.parametrize(
    ("warning", "rule"),
    [
        ("order_lines_not_in_webhook", "order_lines_not_in_webhook"),
        ("quantity 2.5 rounded down to 2", "fractional_quantity_rounded"),
        ("balance 1.5 of variant v1 rounded down to 1", "fractional_quantity_rounded"),
        ("line 7 has no product variant: no stock moved", "line_without_variant"),
        ("line 7 has no inventory location: stock not tracked", "stock_not_tracked"),
        ("Something odd happened", "unclassified_warning"),
    ],
)
def test_warnings_fall_under_rules(warning: str, rule: str) -> None:
    assert rule_of(warning) == rule


def test_default_profile_warns_about_everything() -> None:
    commands = [command("k1", "order_lines_not_in_webhook"), command("k2")]
    kept, warned, rejected = apply_profile(default_profile("square", "tenant-acme"), commands)
    assert kept == commands
    assert [(f.rule, f.idempotency_key) for f in warned] == [("order_lines_not_in_webhook", "k1")]
    assert rejected == []


def test_reject_warn_and_off() -> None:
    profile = ValidationProfile(
        "zettle",
        "tenant-acme",
        {Rule.FRACTIONAL_QUANTITY_ROUNDED.value: Decision.REJECT, Rule.STOCK_NOT_TRACKED.value: Decision.OFF},
    )
    commands = [
        command("k1", "balance 1.5 of variant v1 rounded down to 1"),
        command("k2", "line 3 has no inventory location: stock not tracked", "line 4 has no product variant"),
    ]
    kept, warned, rejected = apply_profile(profile, commands)
    assert [c.idempotency_key for c in kept] == ["k2"]
    # `off` drops the warning from the kept command; `warn` keeps it.
    assert kept[0].warnings == ("line 4 has no product variant",)
    assert [f.rule for f in warned] == ["line_without_variant"]
    assert [(f.rule, f.idempotency_key) for f in rejected] == [("fractional_quantity_rounded", "k1")]
