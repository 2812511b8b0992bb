"""Gateway benchmark: signed webhooks through `posgate serve gateway` against a bare ASGI app.

Run from the repository root (about 3.5 minutes; `--quick` takes about a minute; needs `wrk`):

    .venv/bin/python -m benchmarks.gateway

It creates a fresh PostgreSQL database, runs a bare ASGI app (`benchmarks/bare_asgi.py`, uvicorn
with httptools, one process), a Starlette route that answers as the gateway does without its
work (the floor, same file) and `posgate serve gateway` as separate processes, drives each
with the same wrk command, then both at a fixed rate of half the gateway's throughput, then two
processes of each sharing the port under wrk, then webhooks at 500/s with `posgate serve
inventory` behind the gateway and a WatchStock stream watching the changes arrive. Prints one
table and removes what it created.
docs/benchmarks.md explains each figure and what limits it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

import grpc
from sqlalchemy.engine import make_url

from benchmarks import database, deliveries
from benchmarks.cpu import CpuMeter, CpuSource, before_run, matching_seconds, probe_line
from benchmarks.gateway_figures import EndToEnd, RatePhase, Results, WrkPhase, notes, rows
from benchmarks.http_load import fixed_rate, run_wrk, wait_http, wrk_children_seconds
from benchmarks.inventory import (
    PG_BACKGROUND,
    Setup,
    Target,
    add_service_options,
    delete_topology,
    inventory_server,
    run_benchmark,
)
from benchmarks.pauses import collector_paused
from benchmarks.processes import Child, free_port, wait_serving
from benchmarks.report import machine_facts, table
from posgate.clients.inventory import InventoryClient
from posgate.db.engine import create_engine, session_factory
from posgate.gateway import mappings


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


FULL = Plan(2, 10, 2, 64, 90_000, 500, 400)
QUICK = Plan(1, 3, 2, 64, 20_000, 500, 200)


Counter = Callable[[], Awaitable[tuple[int, int]]]
"""Deliveries accepted and database commits so far."""


@dataclass(frozen=True)
class Server:
    """A running HTTP server and whose CPU time counts as its cost."""

    port: int
    sources: Mapping[str, CpuSource]


def db_sources(database_url: str) -> dict[str, CpuSource]:
    """PostgreSQL backends of the bench database and PostgreSQL's background writers."""
    return {
        "postgres": matching_seconds(f" {make_url(database_url).database} "),
        "pg-background": matching_seconds(*(f"postgres: {p}" for p in PG_BACKGROUND)),
    }


def summed(children: Sequence[Child]) -> CpuSource:
    """The CPU seconds of `children` together."""
    return lambda: sum(child.cpu_seconds() for child in children)


@asynccontextmanager
async def bare_app(
    setup: Setup, loop: str, processes: int = 1, *, app: str = "bare"
) -> AsyncIterator[Server]:
    """The bare ASGI baseline: one uvicorn process, or `processes` sharing the port (SO_REUSEPORT).

    `app="starlette"`: the floor instead, a Starlette route answering as the gateway does
    without its work (`benchmarks/bare_asgi.py`).
    """
    port = free_port()
    args = ["-m", "benchmarks.bare_asgi", "--port", str(port), "--loop", loop, "--app", app]
    if processes > 1:
        args.append("--reuse-port")
    children = []
    try:
        for number in range(processes):
            children.append(Child(f"{app}-{loop}-{number}", args, {}, setup.log_dir))
        await wait_http(port)
        yield Server(port, {"server": summed(children), "wrk": wrk_children_seconds})
    finally:
        for child in children:
            child.stop()


@asynccontextmanager
async def gateway_server(
    setup: Setup,
    database_url: str,
    secret: str,
    inventory_port: int,
    downstream: CpuSource,
    *,
    processes: int = 1,
) -> AsyncIterator[Server]:
    """`posgate serve gateway` with production settings, warnings-only logs and no rate limit.

    With `processes` > 1, that many share the HTTP port (`POSGATE_GATEWAY_HTTP_REUSE_PORT`).
    """
    http_port = free_port()
    credentials = [{"provider": deliveries.PROVIDER, "tenant": deliveries.TENANT, "secrets": [secret]}]
    env = {
        "POSGATE_DATABASE_URL": database_url,
        "POSGATE_EVENT_TRANSPORT": "rabbitmq",
        "POSGATE_AMQP_URL": setup.amqp_url,
        "POSGATE_EVENTS_EXCHANGE": f"{setup.run_id}.events",
        "POSGATE_DEAD_LETTER_EXCHANGE": f"{setup.run_id}.dlx",
        "POSGATE_AUTH_TOKENS": setup.token,
        "POSGATE_GATEWAY_HTTP_PORT": str(http_port),
        "POSGATE_GATEWAY_HTTP_REUSE_PORT": str(processes > 1).lower(),
        "POSGATE_INVENTORY_TARGET": f"127.0.0.1:{inventory_port}",
        "POSGATE_INTERNAL_TOKEN": setup.token,
        "POSGATE_WEBHOOK_CREDENTIALS": json.dumps(credentials),
        # The default limit (1,000/s, burst 2,000) would answer 429s; the benchmark measures the door open.
        "POSGATE_WEBHOOK_RATE_PER_S": "1000000",
        "POSGATE_WEBHOOK_BURST": "1000000",
        "POSGATE_LOG_LEVEL": setup.server_log_level,
    }
    children = []
    try:
        for number in range(processes):
            grpc_port = free_port()
            name = "gateway" if processes == 1 else f"gateway-{number}"
            child = Child(
                name,
                ["-m", "posgate.cli", "serve", "gateway"],
                {**env, "POSGATE_GATEWAY_PORT": str(grpc_port)},
                setup.log_dir,
            )
            children.append(child)
            await wait_serving(child, grpc_port, health=True)
        await wait_http(http_port)
        sources = {"server": summed(children), "inventory": downstream, **db_sources(database_url)}
        yield Server(
            http_port, {**sources, "rabbitmq": matching_seconds("beam.smp"), "wrk": wrk_children_seconds}
        )
    finally:
        for child in children:
            child.stop()


@asynccontextmanager
async def echo_inventory(setup: Setup) -> AsyncIterator[tuple[int, CpuSource]]:
    """The echo gRPC server standing in for inventory: the gateway's dispatch goes somewhere cheap."""
    port = free_port()
    child = Child("echo", ["-m", "benchmarks.echo_server", "--port", str(port)], {}, setup.log_dir)
    try:
        await wait_serving(child, port, health=False)
        yield port, child.cpu_seconds
    finally:
        child.stop()


async def prepare(pg: database.Server, database_url: str) -> None:
    """The merchant, store and item mappings the deliveries use."""
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as session:
            await mappings.upsert(session, deliveries.mapping_entries(), datetime.now(UTC))
            await session.commit()
    finally:
        await engine.dispose()


async def accepted(pg: database.Server, database_url: str) -> int:
    """Raw deliveries the gateway stored as accepted."""
    connection = await pg.connect(make_url(database_url).database or "")
    try:
        return int(
            await connection.fetchval("SELECT count(*) FROM gw_raw_payloads WHERE outcome = 'accepted'")
        )
    finally:
        await connection.close()


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
    earlier phases' `ANALYZE` saw (docs/benchmarks.md, "The relay's claim on stale statistics").
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


async def run(setup: Setup, plan: Plan) -> Results:
    """Every phase, in order."""
    secret = deliveries.new_secret()
    print("bare ASGI (uvloop, asyncio), then a bare Starlette route: wrk ...", flush=True)
    async with bare_app(setup, "uvloop") as bare:
        bare_phase = await wrk_phase(bare, setup, plan, secret, "bare")
    async with bare_app(setup, "asyncio") as bare:
        bare_asyncio = await wrk_phase(bare, setup, plan, secret, "bareaio")
    async with bare_app(setup, "uvloop", app="starlette") as floor_app:
        floor = await wrk_phase(floor_app, setup, plan, secret, "floor")
    async with database.fresh_database(setup.pg) as url:
        await prepare(setup.pg, url)
        print("gateway (echo gRPC server as inventory): wrk, then half rate ...", flush=True)
        async with (
            echo_inventory(setup) as (echo_port, echo_cpu),
            gateway_server(setup, url, secret, echo_port, echo_cpu) as gateway,
        ):
            gateway_phase = await gateway_wrk(gateway, setup, plan, secret, url=url, label="gw")
            half_rate = max(1.0, round(gateway_phase.wrk.per_s / 2))
            half = await rate_phase(gateway, secret, half_rate, plan, "half")
        print(f"bare ASGI at {half_rate:,.0f}/s ...", flush=True)
        async with bare_app(setup, "uvloop") as bare:
            bare_half = await rate_phase(bare, secret, half_rate, plan, "barehalf")
        print(f"end to end: inventory + gateway, {plan.e2e_rate:,.0f} webhooks/s ...", flush=True)
        async with inventory_server(setup, url, edge=True) as inventory:
            inventory_cpu = inventory.sources["server"]
            # The gateway sends its commands to the inventory's stream edge, as deploy/ sets it up.
            target = inventory.stream_port or inventory.port
            async with gateway_server(setup, url, secret, target, inventory_cpu) as gateway:
                analyze = partial(database.analyze, setup.pg, url)
                e2e = await end_to_end(gateway, inventory, setup.token, secret, plan, after_warmup=analyze)
    bare_two, gateway_two = await two_processes(setup, plan, secret)
    return Results(
        bare_phase, bare_asyncio, floor, gateway_phase, half, bare_half, e2e, bare_two, gateway_two
    )


async def two_processes(setup: Setup, plan: Plan, secret: str) -> tuple[WrkPhase, WrkPhase]:
    """wrk against two bare processes, then two gateways, sharing the port (fresh database)."""
    print("two processes each, sharing the port: bare ASGI, then gateway: wrk ...", flush=True)
    async with bare_app(setup, "uvloop", processes=2) as bare:
        bare_two = await wrk_phase(bare, setup, plan, secret, "bare2")
    # A fresh database, analyzed after the warm-up, as for the one gateway process.
    async with database.fresh_database(setup.pg) as url:
        await prepare(setup.pg, url)
        async with (
            echo_inventory(setup) as (echo_port, echo_cpu),
            gateway_server(setup, url, secret, echo_port, echo_cpu, processes=2) as gateway,
        ):
            gateway_two = await gateway_wrk(gateway, setup, plan, secret, url=url, label="gw2")
    return bare_two, gateway_two


async def gateway_wrk(
    server: Server, setup: Setup, plan: Plan, secret: str, *, url: str, label: str
) -> WrkPhase:
    """`wrk_phase` against gateway processes, counting what the database accepted and committed.

    Measured on tables with statistics, as in a database in service (`database.analyze`).
    """

    async def counter() -> tuple[int, int]:
        return await accepted(setup.pg, url), await database.commits(setup.pg, url)

    analyze = partial(database.analyze, setup.pg, url)
    return await wrk_phase(server, setup, plan, secret, label, counter=counter, after_warmup=analyze)


async def main_async(setup: Setup, plan: Plan) -> None:
    """Print the facts, run every phase within the time budget, print the table, clean up."""
    print("\n".join(machine_facts(await database.durability(setup.pg))), flush=True)
    print(
        f"servers     log level {setup.server_log_level} (no per-request log lines), one process each",
        flush=True,
    )
    print("\n".join(await before_run()), flush=True)
    try:
        results = await asyncio.wait_for(run(setup, plan), plan.budget_s)
    finally:
        await delete_topology(setup)
    print()
    print("\n".join(notes(results)))
    print()
    print(table(rows(results, threads=plan.threads, connections=plan.connections, e2e_rate=plan.e2e_rate)))
    print(probe_line("after run"))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.gateway",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 3 s per phase")
    add_service_options(parser, log_level="WARNING")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m benchmarks.gateway`."""
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    plan = QUICK if args.quick else FULL
    return run_benchmark(args, lambda setup: main_async(setup, plan))


if __name__ == "__main__":
    sys.exit(main())
