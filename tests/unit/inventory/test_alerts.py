"""The bulk path's shortcut (`alerts.unremarkable`) against the full walk (`alerts.crossings`)."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from posgate.services.inventory import alerts
from posgate.services.inventory.domain import Alert, Level, Position

P = Position("t", "s1", "sku-1")
NOW = datetime(2026, 11, 24, tzinfo=UTC)

rows = st.fixed_dictionaries(
    {
        "low_threshold": st.none() | st.integers(0, 6),
        "out_threshold": st.integers(0, 4),
        "alert": st.sampled_from([a.value for a in Alert]),
        "negative": st.booleans(),
    }
)
paths = st.lists(st.tuples(st.integers(-5, 12), st.integers(0, 3)), min_size=1, max_size=6)


def _levels(path: list[tuple[int, int]]) -> list[tuple[Level, str]]:
    return [(Level(P, on_hand, reserved, n, NOW), f"k{n}") for n, (on_hand, reserved) in enumerate(path)]


@given(rows, paths)
def test_an_unremarkable_path_has_no_crossing_and_leaves_the_state_as_it_was(row, path) -> None:
    levels = _levels(path)
    before = alerts.Watch.from_row(row)
    events, after = alerts.crossings(before, levels)
    if alerts.unremarkable(row, levels):
        assert events == []
        assert after == before
    else:
        # Not unremarkable: the row starts outside OK or flagged, or some level leaves OK or goes below zero.
        leaves = any(
            level.on_hand < 0
            or level.available <= row["out_threshold"]
            or (row["low_threshold"] is not None and level.available <= row["low_threshold"])
            for level, _ in levels
        )
        assert leaves or row["alert"] != Alert.OK or row["negative"]


def test_a_sale_into_the_low_band_is_remarkable() -> None:
    row = {"low_threshold": 3, "out_threshold": 0, "alert": "ok", "negative": False}
    assert alerts.unremarkable(row, _levels([(5, 0)]))
    assert not alerts.unremarkable(row, _levels([(5, 0), (3, 0)]))
    events, _ = alerts.crossings(alerts.Watch.from_row(row), _levels([(5, 0), (3, 0)]))
    assert [e.alert for e in events] == [Alert.LOW]


@given(rows, st.integers(0, 3), st.lists(st.integers(-5, 12), min_size=1, max_size=6))
def test_the_lowest_on_hand_decides_as_the_whole_path_when_reserved_stays(row, reserved, on_hands) -> None:
    # Movements change on-hand only: along a bulk call's path every level has the row's reserved.
    levels = _levels([(on_hand, reserved) for on_hand in on_hands])

    assert alerts.calm({**row, "reserved": reserved}, min(on_hands)) == alerts.unremarkable(row, levels)


def test_a_path_that_dips_below_the_low_threshold_is_not_calm_even_if_it_ends_above() -> None:
    row = {"low_threshold": 3, "out_threshold": 0, "alert": "ok", "negative": False, "reserved": 0}
    assert alerts.calm(row, 4)
    assert not alerts.calm(row, 3)
    assert not alerts.calm({**row, "reserved": 1}, 4)
