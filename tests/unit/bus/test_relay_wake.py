"""`OutboxRelay.wake()` starts a round at once, coalesces, and does not cut a failure backoff short."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from sqlalchemy.ext.asyncio import async_sessionmaker

from posgate.bus.ports import EventSink, OutgoingEvent
from posgate.bus.relay import OutboxRelay
from posgate.bus.retry import Backoff

DEADLINE_S = 5.0  # far below the 30 s poll: a round inside it was started by a wake


class NullSink(EventSink):
    async def publish(self, events: Sequence[OutgoingEvent]) -> None:
        return None


class CountingRelay(OutboxRelay):
    """A relay whose rounds only count themselves (the outbox itself is tested against real databases)."""

    def __init__(self, *, during_round: Callable[[CountingRelay, int], None] | None = None, **kwargs) -> None:
        super().__init__(async_sessionmaker(), NullSink(), poll_interval=30.0, **kwargs)
        self.rounds = 0
        self._during_round = during_round
        self._changed = asyncio.Condition()

    async def publish_pending(self) -> int:
        self.rounds += 1
        async with self._changed:
            self._changed.notify_all()
        if self._during_round is not None:
            self._during_round(self, self.rounds)
        return 0

    async def until_rounds(self, count: int) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: self.rounds >= count), DEADLINE_S)


async def _running(relay: CountingRelay) -> asyncio.Task[None]:
    task = asyncio.create_task(relay.run())
    await relay.until_rounds(1)
    return task


async def _stop(relay: CountingRelay, task: asyncio.Task[None]) -> None:
    relay.stop()
    await asyncio.wait_for(task, DEADLINE_S)  # stop() also ends the idle wait at once


async def test_wake_starts_a_round_without_waiting_for_the_poll() -> None:
    relay = CountingRelay()
    task = await _running(relay)
    relay.wake()
    await relay.until_rounds(2)
    await _stop(relay, task)


async def test_wakes_before_a_round_coalesce_into_one() -> None:
    relay = CountingRelay()
    task = await _running(relay)
    for _ in range(3):
        relay.wake()
    await relay.until_rounds(2)
    await asyncio.sleep(0.1)  # an uncoalesced wake would start round 3 right away
    assert relay.rounds == 2
    await _stop(relay, task)


async def test_wake_during_a_round_starts_another() -> None:
    def commit_meanwhile(relay: CountingRelay, round_number: int) -> None:
        if round_number == 1:
            relay.wake()  # rows committed after this round read the outbox

    relay = CountingRelay(during_round=commit_meanwhile)
    task = await _running(relay)
    await relay.until_rounds(2)
    await _stop(relay, task)


async def test_wake_does_not_cut_the_failure_backoff_short() -> None:
    class FailingRelay(CountingRelay):
        async def publish_pending(self) -> int:
            await super().publish_pending()
            raise ConnectionError("broker down")

    relay = FailingRelay(backoff=Backoff(base_s=30.0, cap_s=30.0))
    task = await _running(relay)
    relay.wake()
    await asyncio.sleep(0.1)
    assert relay.rounds == 1
    await _stop(relay, task)


async def test_a_wake_right_after_a_round_waits_for_the_spacing_one_after_a_quiet_spell_does_not() -> None:
    relay = CountingRelay(round_spacing=0.3)
    loop = asyncio.get_running_loop()
    task = await _running(relay)
    relay.wake()  # right after round 1: commits keep coming, so round 2 gathers them
    started = loop.time()
    await relay.until_rounds(2)
    assert loop.time() - started >= 0.25
    await asyncio.sleep(0.4)  # quiet
    relay.wake()
    started = loop.time()
    await relay.until_rounds(3)
    assert loop.time() - started < 0.2
    await _stop(relay, task)
