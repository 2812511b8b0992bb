"""Standard gRPC health whose status follows the dependencies a component needs.

A `HealthMonitor` probes every dependency on an interval and sets `grpc.health.v1` status
for the whole server ("") and for each registered service: SERVING only while every probe
passes. Status changes are logged once, when they happen.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from grpc_health.v1 import health_pb2
from sqlalchemy.ext.asyncio import AsyncEngine

from posgate.db.engine import ping

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
OVERALL = ""

ProbeCheck = Callable[[], Awaitable[bool | None]]


@dataclass(frozen=True)
class DependencyProbe:
    """One dependency to watch.

    Attributes:
        name: Shown in logs (`database`, `broker`).
        check: Returns None or True when healthy; returns False or raises when not.
        timeout_s: A check slower than this counts as failed.

    """

    name: str
    check: ProbeCheck
    timeout_s: float = 2.0

    async def failure(self) -> str | None:
        """Run the check once; return why it failed, or None when it passed."""
        try:
            async with asyncio.timeout(self.timeout_s):
                healthy = await self.check()
        except TimeoutError:
            return f"no answer within {self.timeout_s:g}s"
        except Exception as error:
            # Whatever a dependency raises, the component cannot rely on it right now.
            return f"{type(error).__name__}: {error}"
        return None if healthy is None or healthy else "reported unhealthy"


def database_probe(engine: AsyncEngine, *, timeout_s: float = 2.0) -> DependencyProbe:
    """Probe the database with `SELECT 1` through the component's engine."""

    async def check() -> None:
        await ping(engine)

    return DependencyProbe("database", check, timeout_s)


def broker_probe(
    check: Callable[[], Awaitable[bool]], *, name: str = "broker", timeout_s: float = 2.0
) -> DependencyProbe:
    """Probe the message broker with a check the event bus supplies (True when connected)."""
    return DependencyProbe(name, check, timeout_s)


class HealthMonitor:
    """Keeps a health servicer's statuses in step with the component's dependencies."""

    def __init__(
        self,
        servicer: Any,
        service_names: Sequence[str],
        probes: Sequence[DependencyProbe],
        *,
        interval_s: float,
        component: str,
        logger: logging.Logger | None = None,
    ) -> None:
        """Create the monitor.

        Args:
            servicer: A `grpc_health.v1._async.HealthServicer` (typed Any: grpc-stubs lacks it).
            service_names: Fully-qualified service names whose status to set besides "".
            probes: Dependencies that must all pass for SERVING.
            interval_s: Seconds between probe rounds.
            component: Component name for the logs.
            logger: Where status changes go.

        """
        self._servicer = servicer
        self._names = (OVERALL, *service_names)
        self._probes = tuple(probes)
        self._interval_s = interval_s
        self._component = component
        self._logger = logger or logging.getLogger("posgate.health")
        self._failures: Mapping[str, str] | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def serving(self) -> bool:
        """Whether the last probe round passed."""
        return self._failures is not None and not self._failures

    async def mark_not_serving(self) -> None:
        """Report NOT_SERVING for every name until the first probe round says otherwise."""
        for name in self._names:
            await self._servicer.set(name, NOT_SERVING)

    async def refresh(self) -> bool:
        """Run every probe once, update the statuses, and return whether all passed."""
        results = await asyncio.gather(*(probe.failure() for probe in self._probes))
        failures = {probe.name: why for probe, why in zip(self._probes, results, strict=True) if why}
        status = NOT_SERVING if failures else SERVING
        for name in self._names:
            await self._servicer.set(name, status)
        self._log_change(failures)
        self._failures = failures
        return not failures

    async def start(self) -> None:
        """Probe once now, then keep probing in the background."""
        await self.refresh()
        self._task = asyncio.create_task(self._run(), name=f"health-monitor[{self._component}]")

    async def stop(self) -> None:
        """Stop probing and report NOT_SERVING for good (graceful shutdown)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self._servicer.enter_graceful_shutdown()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await self.refresh()
            except Exception:
                # A bug here must not freeze health at its last value silently.
                self._logger.exception("health probing failed component=%s", self._component)

    def _log_change(self, failures: Mapping[str, str]) -> None:
        previous = self._failures
        if previous is not None and previous.keys() == failures.keys():
            return
        if failures:
            detail = "; ".join(f"{name}: {why}" for name, why in sorted(failures.items()))
            self._logger.warning("health NOT_SERVING component=%s failing=[%s]", self._component, detail)
        else:
            self._logger.info("health SERVING component=%s", self._component)
