"""In-process topic matching follows AMQP topic-exchange rules."""

from __future__ import annotations

import pytest

from posgate.bus.inprocess import topic_matches


@pytest.mark.parametrize(
    ("binding", "routing_key", "expected"),
    [
        ("inventory.stock_changed", "inventory.stock_changed", True),
        ("inventory.stock_changed", "inventory.stock_reserved", False),
        ("inventory.*", "inventory.stock_changed", True),
        ("inventory.*", "inventory", False),
        ("inventory.*", "inventory.stock.changed", False),
        ("*.routed", "orders.routed", True),
        ("#", "orders.routed", True),
        ("#", "orders", True),
        ("orders.#", "orders", True),
        ("orders.#", "orders.routed.late", True),
        ("orders.#", "returns.completed", False),
        ("#.completed", "returns.completed", True),
        ("#.completed", "returns.partial", False),
        ("a.#.z", "a.z", True),
        ("a.#.z", "a.b.c.z", True),
        ("a.*.#", "a", False),
        ("a.*.#", "a.b", True),
    ],
)
def test_topic_matching(binding: str, routing_key: str, expected: bool) -> None:
    assert topic_matches(binding, routing_key) is expected
