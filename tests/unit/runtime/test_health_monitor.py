"""The health monitor against a hand-written fake servicer and fake probes."""

from __future__ import annotations

import asyncio
import logging

from posgate.runtime.health import NOT_SERVING, SERVING, DependencyProbe, HealthMonitor


class FakeHealthServicer:
    """Records statuses the way grpc_health's aio servicer stores them."""

    def __init__(self) -> None:
        self.statuses: dict[str, int] = {}
        self.shutting_down = False

    async def set(self, service: str, status: int) -> None:
        if not self.shutting_down:
            self.statuses[service] = status

    async def enter_graceful_shutdown(self) -> None:
        self.shutting_down = True
        self.statuses = dict.fromkeys(self.statuses, NOT_SERVING)


class Switch:
    def __init__(self) -> None:
        self.up = True

    async def check(self) -> bool:
        return self.up


def _monitor(servicer, *probes) -> HealthMonitor:
    return HealthMonitor(servicer, ["a.v1.A", "b.v1.B"], probes, interval_s=0.01, component="test")


async def test_serving_only_while_every_probe_passes():
    servicer, database, broker = FakeHealthServicer(), Switch(), Switch()
    monitor = _monitor(
        servicer, DependencyProbe("database", database.check), DependencyProbe("broker", broker.check)
    )
    assert await monitor.refresh()
    assert servicer.statuses == {"": SERVING, "a.v1.A": SERVING, "b.v1.B": SERVING}
    broker.up = False
    assert not await monitor.refresh()
    assert set(servicer.statuses.values()) == {NOT_SERVING}
    broker.up = True
    assert await monitor.refresh()
    assert monitor.serving


async def test_raising_and_slow_probes_fail():
    async def raises() -> None:
        raise ConnectionRefusedError("connection refused")

    async def hangs() -> None:
        await asyncio.Event().wait()

    assert "ConnectionRefusedError" in (await DependencyProbe("db", raises).failure() or "")
    assert "no answer within" in (await DependencyProbe("db", hangs, timeout_s=0.01).failure() or "")


async def test_transitions_are_logged_once_not_every_round(caplog):
    caplog.set_level(logging.INFO, logger="posgate.health")
    database = Switch()
    monitor = _monitor(FakeHealthServicer(), DependencyProbe("database", database.check))
    for up in (True, True, False, False, False, True, True):
        database.up = up
        await monitor.refresh()
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 3
    assert "SERVING" in messages[0]
    assert "NOT_SERVING" in messages[1]
    assert "database: reported unhealthy" in messages[1]
    assert "health SERVING" in messages[2]


async def test_statuses_follow_probes_in_the_background_and_stop_reports_not_serving():
    servicer, database = FakeHealthServicer(), Switch()
    monitor = _monitor(servicer, DependencyProbe("database", database.check))
    await monitor.mark_not_serving()
    assert servicer.statuses[""] == NOT_SERVING
    await monitor.start()
    assert servicer.statuses[""] == SERVING
    database.up = False
    async with asyncio.timeout(10):
        while servicer.statuses[""] != NOT_SERVING:  # noqa: ASYNC110 - observing a fake, not waiting for an event
            await asyncio.sleep(0.01)
    database.up = True
    await monitor.stop()
    assert set(servicer.statuses.values()) == {NOT_SERVING}
