"""A bulk call's ledger rows and the movements that come first with their keys."""

from __future__ import annotations

from datetime import UTC, datetime

from posgate.services.inventory.domain import Kind, MovementCommand, Position
from posgate.services.inventory.ledger_rows import first_occurrences, ledger_rows, movement_rows

NOW = datetime(2026, 11, 24, 23, 0, tzinfo=UTC)
EARLIER = datetime(2026, 11, 24, 22, 0, tzinfo=UTC)


def test_movement_rows_are_the_ledger_rows_of_the_movements() -> None:
    commands = [
        MovementCommand("k-1", Position("t1", "s1", "a"), Kind.SALE, -2, EARLIER, "receipt-9", "square"),
        MovementCommand("k-2", Position("t1", "s2", "b"), Kind.RECEIPT, 5),
        MovementCommand("k-3", Position("t2", "s1", "a"), None, 1, None, "", "shopify"),
    ]
    kinds = [c.kind or Kind.ADJUSTMENT for c in commands]
    expected = ledger_rows(commands, kinds, [c.delta for c in commands], NOW)
    rows = movement_rows(commands, NOW)
    assert {name: list(values) for name, values in rows.items()} == expected
    assert expected["kind"] == ["sale", "receipt", "adjustment"]
    assert expected["occurred_at"] == [EARLIER, None, None]


def test_no_movements_make_no_rows() -> None:
    assert all(len(values) == 0 for values in movement_rows([], NOW).values())


def test_a_key_repeated_by_one_tenant_comes_first_once_and_another_tenants_is_its_own() -> None:
    commands = [
        MovementCommand("k-1", Position("t1", "s1", "a"), Kind.SALE, -1),
        MovementCommand("k-2", Position("t1", "s1", "a"), Kind.SALE, -1),
        MovementCommand("k-1", Position("t1", "s2", "b"), Kind.SALE, -1),
        MovementCommand("k-1", Position("t2", "s1", "a"), Kind.SALE, -1),
    ]
    assert list(first_occurrences(commands)) == [0, 1, 3]


def test_distinct_keys_all_come_first() -> None:
    commands = [MovementCommand(f"k-{n}", Position("t1", "s1", "a"), Kind.SALE, -1) for n in range(5)]
    assert list(first_occurrences(commands)) == [0, 1, 2, 3, 4]
