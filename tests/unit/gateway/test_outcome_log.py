"""The dispatcher's outcome log: rounds' outcomes written together, failures surfaced, nothing dropped."""

from __future__ import annotations

import asyncio

import pytest

from posgate.gateway.claims import Claimed
from posgate.gateway.outcome_log import OutcomeLog


def claim(command_id: int) -> Claimed:
    return Claimed(command_id, "svc/Method", b"", f"k-{command_id}", 1, "t", "s", 1, "p", "topic")


class Writes:
    """Records each write; fails the first `failing` of them."""

    def __init__(self, failing: int = 0) -> None:
        self.written: list[list[int]] = []
        self.failing = failing

    async def __call__(self, claimed, outcomes) -> None:
        assert len(claimed) == len(outcomes)
        if self.failing:
            self.failing -= 1
            raise RuntimeError("database down")
        self.written.append([c.id for c in claimed])


async def test_outcomes_wait_until_the_oldest_is_due_then_go_in_one_write() -> None:
    writes = Writes()
    log = OutcomeLog(writes, spacing=0.05)
    assert log.due_in() is None

    log.add([claim(1)], [None])
    log.add([claim(2), claim(3)], [None, RuntimeError("x")])
    await log.write_due()
    assert writes.written == []
    due = log.due_in()
    assert due is not None
    assert 0 < due <= 0.05

    await asyncio.sleep(0.06)
    await log.write_due()
    await log.flush()

    assert writes.written == [[1, 2, 3]]
    assert log.due_in() is None


async def test_a_failed_write_surfaces_in_the_next_call_and_flush_still_writes_what_waits() -> None:
    writes = Writes(failing=1)
    log = OutcomeLog(writes, spacing=0)
    log.add([claim(1)], [None])
    await log.write_due()  # starts the write that fails
    log.add([claim(2)], [None])

    with pytest.raises(RuntimeError, match="database down"):
        await log.write_due()
    await log.flush()

    assert writes.written == [[2]]  # 1 stays leased: another dispatcher resends it when its lease ends
