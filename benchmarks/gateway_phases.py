"""The gateway benchmark's measured phases: wrk, a fixed rate, and webhook to WatchStock change.

`benchmarks/gateway.py` starts the servers and runs these against them, in order.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import grpc

from benchmarks import deliveries
from benchmarks.cpu import CpuMeter, CpuSource
from benchmarks.gateway_figures import EndToEnd, RatePhase, WrkPhase
from benchmarks.harness import Setup, Target
from benchmarks.http_load import fixed_rate, run_wrk
from benchmarks.pauses import collector_paused
from posgate.clients.inventory import InventoryClient


@dataclass(frozen=True)
class Plan:
    """How long and how hard each phase runs."""

    warmup_s: float
    duration_s: float
    threads: int
    connections: int
    deliveries: int
    e2e_rate: float
    budget_s: float


Counter = Callable[[], Awaitable[tuple[int, int]]]
"""Deliveries accepted and database commits so far."""


@dataclass(frozen=True)
class Server:
    """A running HTTP server and whose CPU time counts as its cost."""

    port: int
    sources: Mapping[str, CpuSource]


async def wrk_phase(
    server: Server,
    setup: Setup,
    plan: Plan,
    secret: str,
    label: str,
    *,
    counter: Counter | None = None,
    after_warmup: Callable[[], Awaitable[None]] | None = None,
) -> WrkPhase:
    """A warm-up wrk run, then the measured one; each with fresh, never-sent deliveries.

    `counter` (accepted deliveries, database commits) is read around the measured run only;
    `after_warmup` runs between the two.
    """
    runs = []
    counted: tuple[int, int] = (0, 0)
    for name, seconds in (("warm", plan.warmup_s), ("run", plan.duration_s)):
        made = deliveries.make(secret, f"{label}{name}{uuid.uuid4().hex[:6]}", plan.deliveries)
        path = deliveries.write_for_wrk(made, setup.log_dir / f"{label}-{name}.tsv")
        if counter is not None:
            counted = await counter()
        meter = CpuMeter(server.sources)
        meter.start()
        result = await run_wrk(
            server.port, path, threads=plan.threads, connections=plan.connections, seconds=seconds
        )
        runs.append(WrkPhase(result, meter.stop()))
        path.unlink()
        if name == "warm" and after_warmup is not None:
            await after_warmup()
    if counter is not None:
        accepted_now, commits_now = await counter()
        runs[-1].accepted = accepted_now - counted[0]
        runs[-1].commits_per_s = (commits_now - counted[1]) / plan.duration_s
    return runs[-1]


async def rate_phase(server: Server, secret: str, rate: float, plan: Plan, label: str) -> RatePhase:
    """Fresh deliveries at `rate`: `plan.warmup_s` of them unmeasured, then `plan.duration_s` measured.

    One schedule on the same connections throughout, as wrk's warm-up precedes its run; the CPU
    share covers both (reading it mid-run would stall this loop for tens of milliseconds).
    """
    warmup = int(rate * plan.warmup_s)
    made = deliveries.make(
        secret, f"{label}{uuid.uuid4().hex[:6]}", warmup + max(1, int(rate * plan.duration_s))
    )
    meter = CpuMeter(server.sources)
    meter.start()
    load = await fixed_rate(server.port, made, rate=rate, connections=64, warmup=warmup)
    return RatePhase(load, meter.stop())


WARM_DELTA = 10_000_000
"""Warm-up deliveries move stock by this much and more: their changes are told apart and skipped."""


async def end_to_end(
    server: Server,
    inventory: Target,
    token: str,
    secret: str,
    plan: Plan,
    *,
    after_warmup: Callable[[], Awaitable[None]] | None = None,
) -> EndToEnd:
    """A WatchStock stream (on the stream edge) on the bench store, then webhooks at `plan.e2e_rate`.

    Measured after `plan.warmup_s` of the same load, as every other phase is: the first few dozen
    webhooks after the processes start pay for new connections, prepared statements and first
    calls (60-100 ms each), which is start-up, not the steady state the figure describes.

    `after_warmup` runs between a first `plan.warmup_s` of the same load and that warm-up. As in
    the wrk phase, `ANALYZE` there gives the tables this phase fills (the inventory's and the
    outbox) the statistics of a database in service, not those of the empty tables that the
    earlier phases' `ANALYZE` saw (docs/benchmark-history.md, "The relay's claim on stale statistics").
    """
    edge = f"127.0.0.1:{inventory.stream_port}" if inventory.stream_port else None
    client = InventoryClient.connect(f"127.0.0.1:{inventory.port}", token=token, stream_target=edge)
    ready, complete, arrivals = asyncio.Event(), asyncio.Event(), {}
    wanted = [sys.maxsize]  # accepted deliveries, known once the load has been sent

    async def watch() -> None:
        stream: Any = client.watch_stock(deliveries.TENANT, store_ids=[deliveries.STORE])
        async for update in stream:
            if update.HasField("snapshot") and update.snapshot.complete:
                ready.set()
            elif update.HasField("change") and update.change.delta < WARM_DELTA:
                arrivals[int(update.change.delta) - 1] = time.monotonic()
                if len(arrivals) >= wanted[0]:
                    complete.set()

    watcher = asyncio.create_task(watch())
    try:
        await asyncio.wait_for(ready.wait(), 30)
        if after_warmup is not None:
            first = deliveries.make(
                secret,
                f"e2efirst{uuid.uuid4().hex[:6]}",
                int(plan.e2e_rate * plan.warmup_s),
                first_delta=WARM_DELTA,
            )
            await fixed_rate(server.port, first, rate=plan.e2e_rate, connections=64, warmup=len(first))
            await after_warmup()
        warm = deliveries.make(
            secret,
            f"e2ewarm{uuid.uuid4().hex[:6]}",
            int(plan.e2e_rate * plan.warmup_s),
            first_delta=WARM_DELTA,
        )
        made = deliveries.make(secret, f"e2e{uuid.uuid4().hex[:6]}", int(plan.e2e_rate * plan.duration_s))
        meter = CpuMeter(server.sources)
        meter.start()
        # Until the last change arrived: a pause of this process would stamp arrivals late.
        with collector_paused():
            # One schedule: the warm-up's deliveries, then the measured ones (numbered from 0).
            load = await fixed_rate(
                server.port, warm + made, rate=plan.e2e_rate, connections=64, warmup=len(warm)
            )
            wanted[0] = load.statuses.get(202, 0)
            if len(arrivals) >= wanted[0]:
                complete.set()
            with suppress(TimeoutError):
                await asyncio.wait_for(complete.wait(), 10)
        # Read after the last change arrived: reading every process's CPU time blocks this loop
        # for tens of milliseconds, and changes arriving meanwhile would be stamped late.
        cpu = meter.stop()
        return EndToEnd(load, cpu, dict(arrivals))
    finally:
        watcher.cancel()
        with suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
            await watcher
        await client.close()
