"""The garbage collector's settings for serving (`posgate.bootstrap.settle_collector`)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from posgate.bootstrap import YOUNG_GENERATION, settle_collector


@pytest.fixture
def restored_collector() -> Iterator[tuple[int, int, int]]:
    """The thresholds before the test; they, and an unfrozen heap, are restored after it."""
    before = gc.get_threshold()
    yield before
    gc.unfreeze()
    gc.set_threshold(*before)


def test_young_collections_wait_for_many_objects_and_older_ratios_stay(
    restored_collector: tuple[int, int, int],
) -> None:
    settle_collector()

    young, middle, old = gc.get_threshold()
    assert young == YOUNG_GENERATION
    assert (middle, old) == restored_collector[1:]


def test_what_was_built_before_serving_is_out_of_the_collectors_reach(
    restored_collector: tuple[int, int, int],
) -> None:
    gc.unfreeze()
    assert gc.get_freeze_count() == 0

    settle_collector()

    assert gc.get_freeze_count() > 0
