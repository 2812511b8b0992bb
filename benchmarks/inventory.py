"""Inventory benchmark: ApplyMovements and WatchStock against a bare grpc.aio baseline.

Run from the repository root (about 3 minutes; `--quick` takes about 35 s):

    .venv/bin/python -m benchmarks.inventory

It creates a fresh PostgreSQL database, runs `posgate serve inventory` and the echo baseline
(`benchmarks/echo_server.py`) as separate processes, drives both from this process with the same
client set-up, prints one table and removes what it created. Figures are printed, never
asserted; docs/benchmarks.md explains each one and what limits it.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import math
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial

from sqlalchemy.engine import make_url

from benchmarks import database
from benchmarks.cpu import CpuMeter, before_run, matching_seconds, probe_line
from benchmarks.fanout import FanoutResult, measure_fanout
from benchmarks.figures import LOAD_TENANTS, Phase, Ported, Results, Wide, phase_notes, rows
from benchmarks.harness import (
    PG_BACKGROUND,
    Setup,
    Target,
    add_service_options,
    delete_topology,
    run_benchmark,
)
from benchmarks.load import Call, Prepared, applying, closed_loop, open_clients
from benchmarks.processes import Child, free_port, wait_serving
from benchmarks.report import machine_facts, table


@dataclass(frozen=True)
class Plan:
    """How long and how hard each phase runs."""

    warmup_s: float
    duration_s: float
    concurrency: int
    channels: int
    batch_size: int
    batch_callers: int
    wide_callers: int
    streams: int
    open_timeout_s: float
    budget_s: float
    # Movements a second the requests prepared for a bulk phase cover (`load_phase`).
    prepared_per_s: int = 80_000


FULL = Plan(2, 10, 64, 4, 1000, 4, 8, 10_000, 90, 330)
QUICK = Plan(0.5, 2, 64, 4, 1000, 4, 8, 500, 20, 150)


async def load_phase(
    target: Target, setup: Setup, plan: Plan, *, tenant: str, per_call: int, callers: int | None = None
) -> Phase:
    """Closed-loop ApplyMovements with the same client set-up for every server.

    `callers` defaults to the plan's: `concurrency` for single movements, else `batch_callers`.
    Bulk calls send requests serialised before the phase (`Prepared`): for the inventory
    enough to cover `plan.prepared_per_s` movements a second, for the echo (tenant "echo") a
    few per caller, sent again and again.
    """
    callers = callers or (plan.concurrency if per_call == 1 else plan.batch_callers)
    call: Call = applying(tenant, per_call)
    prepared = None
    if per_call > 1:
        echo = tenant == "echo"
        seconds = plan.warmup_s + plan.duration_s
        calls = 20 if echo else math.ceil(plan.prepared_per_s * seconds / per_call / callers)
        prepared = Prepared(
            tenant, per_call, callers=callers, calls_per_caller=calls, token=setup.token, reuse=echo
        )
        call = prepared
    clients = open_clients(f"127.0.0.1:{target.port}", setup.token, plan.channels)
    meter = CpuMeter(target.sources)
    commits = target.commits

    async def window_start() -> int:
        await asyncio.sleep(plan.warmup_s)
        meter.start()
        return await commits() if commits else 0

    try:
        starting = asyncio.create_task(window_start())
        load = await closed_loop(
            clients,
            call,
            concurrency=callers,
            warmup_s=plan.warmup_s,
            duration_s=plan.duration_s,
        )
        cpu = meter.stop()
        committed = (await commits() - await starting) if commits else None
        late = prepared.built_late if prepared else 0
        return Phase(load, cpu, None if committed is None else committed / plan.duration_s, late)
    finally:
        for client in clients:
            await client.close()


async def fanout_phase(
    target: Target, setup: Setup, plan: Plan, *, key_prefix: str = "fanout"
) -> FanoutResult:
    """WatchStock fan-out with the same client set-up for every server (on its stream edge if any)."""
    return await measure_fanout(
        f"127.0.0.1:{target.port}",
        setup.token,
        target.rss_kib,
        target.sources,
        streams=plan.streams,
        open_timeout_s=plan.open_timeout_s,
        stream_target=f"127.0.0.1:{target.stream_port}" if target.stream_port else None,
        key_prefix=key_prefix,
    )


@asynccontextmanager
async def echo_server(setup: Setup) -> AsyncIterator[Target]:
    """A fresh echo baseline process."""
    port = free_port()
    child = Child("echo", ["-m", "benchmarks.echo_server", "--port", str(port)], {}, setup.log_dir)
    try:
        await wait_serving(child, port, health=False)
        yield Target(child.pid, port, {"server": child.cpu_seconds}, child.rss_kib)
    finally:
        child.stop()


@asynccontextmanager
async def inventory_server(setup: Setup, database_url: str, *, edge: bool = False) -> AsyncIterator[Target]:
    """A fresh `posgate serve inventory` with production settings: PostgreSQL, RabbitMQ, a token.

    With `edge`, it also serves WatchStock on its stream edge (`POSGATE_INVENTORY_STREAM_PORT`).
    """
    port = free_port()
    stream_port = free_port() if edge else None
    env = {
        "POSGATE_DATABASE_URL": database_url,
        "POSGATE_EVENT_TRANSPORT": "rabbitmq",
        "POSGATE_AMQP_URL": setup.amqp_url,
        "POSGATE_EVENTS_EXCHANGE": f"{setup.run_id}.events",
        "POSGATE_DEAD_LETTER_EXCHANGE": f"{setup.run_id}.dlx",
        "POSGATE_INVENTORY_PORT": str(port),
        "POSGATE_AUTH_TOKENS": setup.token,
        "POSGATE_LOG_LEVEL": setup.server_log_level,
    }
    if stream_port is not None:
        env["POSGATE_INVENTORY_STREAM_PORT"] = str(stream_port)
    child = Child("inventory", ["-m", "posgate.cli", "serve", "inventory"], env, setup.log_dir)
    sources = {
        "server": child.cpu_seconds,
        # PostgreSQL names each backend `postgres: <user> <database> ...`.
        "postgres": matching_seconds(f" {make_url(database_url).database} "),
        "pg-background": matching_seconds(*(f"postgres: {p}" for p in PG_BACKGROUND)),
        "rabbitmq": matching_seconds("beam.smp"),
    }
    try:
        await wait_serving(child, port, health=True)
        commits = partial(database.commits, setup.pg, database_url)
        yield Target(child.pid, port, sources, child.rss_kib, commits, stream_port)
    finally:
        child.stop()


async def run(setup: Setup, plan: Plan) -> Results:
    """Every phase, in order; each server process is fresh for its fan-out (clean memory figures).

    Every ApplyMovements phase runs before the first fan-out: closing 10,000 streams leaves
    grpc.aio about as many pending status tasks in this process, and the load phases after
    them ran with a third more client CPU per movement and about 10% fewer movements per second.
    """
    print("echo baseline: ApplyMovements ...", flush=True)
    async with echo_server(setup) as echo:
        echo_single = await load_phase(echo, setup, plan, tenant="echo", per_call=1)
        echo_batched = await load_phase(echo, setup, plan, tenant="echo", per_call=plan.batch_size)
        echo_wide = await load_phase(
            echo, setup, plan, tenant="echo", per_call=plan.batch_size, callers=plan.wide_callers
        )
    async with database.fresh_database(setup.pg) as url:
        print("inventory: ApplyMovements on the stream edge, then on the gRPC port ...", flush=True)
        async with inventory_server(setup, url, edge=True) as server:
            # The edge's phases, which the goals judge, run first on the empty ledger, as the
            # echo runs on nothing; the gRPC port's run on the ledger the edge's phases filled.
            edge = dataclasses.replace(server, port=server.stream_port or server.port)
            single_edge = await load_phase(edge, setup, plan, tenant="unary-edge", per_call=1)
            batched_edge = await load_phase(
                edge, setup, plan, tenant="batched-edge", per_call=plan.batch_size
            )
            wide_edge = await load_phase(
                edge, setup, plan, tenant="batched-wide", per_call=plan.batch_size, callers=plan.wide_callers
            )
            single = await load_phase(server, setup, plan, tenant="unary", per_call=1)
            batched = await load_phase(server, setup, plan, tenant="batched", per_call=plan.batch_size)
        committed = {t: await database.movement_count(setup.pg, url, t) for t in LOAD_TENANTS}
        print(f"echo baseline: WatchStock, {plan.streams:,} streams ...", flush=True)
        async with echo_server(setup) as echo:
            echo_fanout = await fanout_phase(echo, setup, plan)
        print(f"inventory: WatchStock on the stream edge, {plan.streams:,} streams ...", flush=True)
        async with inventory_server(setup, url, edge=True) as server:
            fanout = await fanout_phase(server, setup, plan, key_prefix="edge")
        print(f"inventory: WatchStock on the gRPC port, {plan.streams:,} streams ...", flush=True)
        async with inventory_server(setup, url) as server:
            fanout_grpc = await fanout_phase(server, setup, plan, key_prefix="grpc")
    return Results(
        echo_single,
        echo_batched,
        echo_fanout,
        Ported(single_edge, single),
        Ported(batched_edge, batched),
        fanout,
        committed,
        fanout_grpc,
        Wide(echo_wide, wide_edge),
    )


async def main_async(setup: Setup, plan: Plan) -> None:
    """Print the facts, run every phase within the time budget, print the table, clean up."""
    print("\n".join(machine_facts(await database.durability(setup.pg))), flush=True)
    print("\n".join(await before_run()), flush=True)
    try:
        results = await asyncio.wait_for(run(setup, plan), plan.budget_s)
    finally:
        await delete_topology(setup)
    print()
    print("\n".join(phase_notes(results)))
    print()
    print(
        table(
            rows(
                results,
                concurrency=plan.concurrency,
                batch_size=plan.batch_size,
                batch_callers=plan.batch_callers,
                wide_callers=plan.wide_callers,
                streams=plan.streams,
            )
        )
    )
    print(probe_line("after run"))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.inventory",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 s per phase, 500 streams")
    parser.add_argument("--streams", type=int, help="WatchStock streams (default 10,000; 500 with --quick)")
    add_service_options(parser, log_level="INFO")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m benchmarks.inventory`."""
    args = parse_args(argv)
    plan = QUICK if args.quick else FULL
    if args.streams:
        plan = dataclasses.replace(plan, streams=args.streams)
    return run_benchmark(args, lambda setup: main_async(setup, plan))


if __name__ == "__main__":
    sys.exit(main())
