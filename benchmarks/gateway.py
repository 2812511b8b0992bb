"""Gateway benchmark: signed webhooks through `posgate serve gateway` against a bare ASGI app.

Run from the repository root (about 3.5 minutes; `--quick` takes about a minute; needs `wrk`):

    .venv/bin/python -m benchmarks.gateway

It creates a fresh PostgreSQL database, runs a bare ASGI app (`benchmarks/bare_asgi.py`, uvicorn
with httptools, one process), a Starlette route that answers as the gateway does without its
work (the floor, same file) and `posgate serve gateway` as separate processes, drives each
with the same wrk command, then the bare app and the gateway at a fixed rate of half the
gateway's throughput, then two processes of each sharing the port under wrk, then webhooks at
500/s with `posgate serve inventory` behind the gateway and a WatchStock stream watching the
changes arrive. Prints one table and removes what it created.
docs/benchmarks.md explains each figure and what limits it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from functools import partial

import uvloop
from sqlalchemy.engine import make_url

from benchmarks import database, deliveries
from benchmarks.cpu import CpuSource, before_run, matching_seconds, probe_line
from benchmarks.gateway_figures import Results, WrkPhase, notes, rows
from benchmarks.gateway_phases import Plan, Server, end_to_end, rate_phase, wrk_phase
from benchmarks.harness import PG_BACKGROUND, Setup, add_service_options, delete_topology, run_benchmark
from benchmarks.http_load import wait_http, wrk_children_seconds
from benchmarks.inventory import inventory_server
from benchmarks.processes import Child, free_port, wait_serving
from benchmarks.report import machine_facts, table
from posgate.db.engine import create_engine, session_factory
from posgate.gateway import mappings

FULL = Plan(2, 10, 2, 64, 90_000, 500, 400)
QUICK = Plan(1, 3, 2, 64, 20_000, 500, 200)


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
    print(
        "client      fixed-rate load and WatchStock stream on uvloop; wrk for the throughput phases",
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
    # The load generator and the stream watcher on uvloop, as the servers are: at half load the
    # standard loop cost the client about 10% more CPU and added 0.4-0.8 ms to every measured
    # latency, the bare app's included (docs/benchmark-history.md, "Gateway, 2026-11-25 01:23 UTC" onwards).
    return run_benchmark(args, lambda setup: main_async(setup, plan), loop_factory=uvloop.new_event_loop)


if __name__ == "__main__":
    sys.exit(main())
