"""What every posgate benchmark shares: where the dependencies are, a run's set-up and clean-up.

`run_benchmark` gives a run its id and log folder, `add_service_options` the command-line
options that say where PostgreSQL and RabbitMQ are, `delete_topology` removes the exchanges
the run's servers declared.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aio_pika

from benchmarks import database
from benchmarks.cpu import CpuSource

PG_BACKGROUND = ("walwriter", "checkpointer", "background writer", "autovacuum", "logical replication")


@dataclass(frozen=True)
class Setup:
    """Where the dependencies are and what this run is called."""

    pg: database.Server
    amqp_url: str
    run_id: str
    token: str
    log_dir: Path
    server_log_level: str


@dataclass(frozen=True)
class Target:
    """A running server: its process, its port, and whose CPU time counts as its cost."""

    pid: int
    port: int
    sources: Mapping[str, CpuSource]
    rss_kib: Callable[[], int]
    commits: Callable[[], Awaitable[int]] | None = None
    stream_port: int | None = None


async def delete_topology(setup: Setup) -> None:
    """Remove the exchanges and the queue this run's servers declared (best effort)."""
    try:
        connection = await aio_pika.connect(setup.amqp_url, timeout=5)
    except (OSError, aio_pika.exceptions.AMQPError, TimeoutError):
        return
    async with connection:
        for kind, name in (
            ("queue", f"{setup.run_id}.dlx.queue"),
            ("exchange", f"{setup.run_id}.dlx"),
            ("exchange", f"{setup.run_id}.events"),
        ):
            channel = await connection.channel()
            with suppress(aio_pika.exceptions.AMQPError):
                await (channel.queue_delete(name) if kind == "queue" else channel.exchange_delete(name))


def add_service_options(parser: argparse.ArgumentParser, *, log_level: str) -> None:
    """The options every benchmark that starts posgate services takes (read by `run_benchmark`)."""
    parser.add_argument(
        "--postgres",
        default=os.environ.get("POSGATE_BENCH_POSTGRES", "postgresql+asyncpg://postgres@127.0.0.1:5432"),
        help="PostgreSQL server (a user allowed to create databases); env POSGATE_BENCH_POSTGRES",
    )
    parser.add_argument(
        "--amqp",
        default=os.environ.get("POSGATE_BENCH_AMQP", "amqp://guest:guest@127.0.0.1:5672/"),
        help="RabbitMQ URL; env POSGATE_BENCH_AMQP",
    )
    parser.add_argument("--server-log-level", default=log_level, help="POSGATE_LOG_LEVEL of the services")
    parser.add_argument("--keep-logs", action="store_true", help="keep the child processes' logs")


def run_benchmark(
    args: argparse.Namespace,
    body: Callable[[Setup], Coroutine[Any, Any, None]],
    *,
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
) -> int:
    """Run `body` with a fresh run id and log folder; keep the logs if asked or if it failed.

    `body` runs on a loop from `loop_factory` (default: the standard library's).
    """
    run_id = f"posgate_bench_{uuid.uuid4().hex[:10]}"
    log_dir = Path(tempfile.mkdtemp(prefix=f"{run_id}-"))
    setup = Setup(
        database.Server.from_url(args.postgres),
        args.amqp,
        run_id,
        f"bench-{uuid.uuid4().hex}",
        log_dir,
        args.server_log_level,
    )
    finished = False
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(body(setup))
        finished = True
    finally:
        if finished and not args.keep_logs:
            shutil.rmtree(log_dir, ignore_errors=True)
        else:
            print(f"child process logs: {log_dir}", file=sys.stderr)
    return 0
