"""HTTP load for the gateway benchmark: wrk (closed loop, as fast as it goes) and a fixed-rate client.

Debian's wrk has no rate option (that is wrk2), so the fixed-rate phases use `fixed_rate`: an
open-loop sender on raw asyncio keep-alive HTTP/1.1 connections. Request n is due at
`start + n / rate`; its latency runs from that due time, not from when a connection was free,
so a slow server cannot hide its queue by slowing the sender (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import re
import resource
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.deliveries import PATH, Delivery
from benchmarks.load import percentile
from benchmarks.pauses import collector_paused

WRK_SCRIPT = Path(__file__).with_name("wrk_post.lua")


@dataclass(frozen=True)
class WrkResult:
    """What wrk's `done()` in wrk_post.lua printed."""

    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: dict[str, int]
    wraps: int

    @property
    def per_s(self) -> float:
        """Completed requests per second."""
        return self.requests / self.seconds

    def describe_errors(self) -> str:
        """`none` or `status 3, timeout 1`."""
        bad = {name: value for name, value in self.errors.items() if value}
        return ", ".join(f"{name} {value}" for name, value in bad.items()) or "none"


def wrk_children_seconds() -> float:
    """CPU seconds of reaped child processes (wrk, once it has exited): the load generator's cost."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def run_wrk(
    port: int, deliveries_file: Path, *, threads: int, connections: int, seconds: float
) -> WrkResult:
    """`wrk -t -c -d --latency` POSTing the file's deliveries to the webhook path on `port`."""
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds:g}s",
        "--latency",
        "--timeout",
        "5s",
        "-s",
        str(WRK_SCRIPT),
        f"http://127.0.0.1:{port}{PATH}",
        "--",
        str(deliveries_file),
        str(threads),
    ]
    done = await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True, check=False)
    found = re.search(r"^RESULT (.*)$", done.stdout, re.MULTILINE)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    values = {k: int(v) for k, v in (pair.split("=") for pair in found.group(1).split())}
    return WrkResult(
        requests=values["requests"],
        seconds=values["duration_us"] / 1e6,
        p50_ms=values["p50_us"] / 1000,
        p90_ms=values["p90_us"] / 1000,
        p99_ms=values["p99_us"] / 1000,
        max_ms=values["max_us"] / 1000,
        errors={k: values[k] for k in ("connect", "read", "write", "status", "timeout")},
        wraps=values["wraps"],
    )


@dataclass
class RateResult:
    """What a fixed-rate run sent and got back; `due` and `done` are monotonic times per request."""

    rate: float
    due: list[float] = field(default_factory=list)
    done: dict[int, float] = field(default_factory=dict)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    first_error: str = ""

    def latency_ms(self, fraction: float) -> float:
        """A percentile of due → response, over the requests answered."""
        return 1000 * percentile(sorted(t - self.due[n] for n, t in self.done.items()), fraction)

    @property
    def achieved_per_s(self) -> float:
        """Responses per second between the first due time and the last response."""
        if not self.done:
            return 0.0
        return len(self.done) / max(max(self.done.values()) - self.due[0], 1e-9)


class _Connection:
    """One keep-alive HTTP/1.1 connection; `exchange` sends a request and reads one response."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def exchange(self, request: bytes) -> int:
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = re.search(rb"(?i)\r\ncontent-length: *([0-9]+)", head)
        if length is None:
            raise RuntimeError("response without Content-Length")
        await self.reader.readexactly(int(length.group(1)))
        return status


async def fixed_rate(
    port: int, deliveries: list[Delivery], *, rate: float, connections: int, warmup: int = 0
) -> RateResult:
    """Send every delivery, number n at `start + n / rate`, over at most `connections` connections.

    The first `warmup` deliveries are sent on the same schedule and connections but left out of
    the result, whose numbering starts after them: the measured window is steady state, not the
    first requests on new connections to a server that was idle a moment before.
    """
    host = f"127.0.0.1:{port}"
    requests = [d.http_request(host) for d in deliveries]
    idle: asyncio.Queue[_Connection] = asyncio.Queue()
    for _ in range(connections):
        idle.put_nowait(_Connection(*await asyncio.open_connection("127.0.0.1", port)))
    result = RateResult(rate=rate)
    start = time.monotonic() + 0.05
    due = [start + n / rate for n in range(len(requests))]
    result.due = due[warmup:]

    async def send(n: int) -> None:
        connection = await idle.get()
        try:
            status = await connection.exchange(requests[n])
        except (OSError, asyncio.IncompleteReadError, RuntimeError) as error:
            if n >= warmup:
                result.errors += 1
                result.first_error = result.first_error or repr(error)
            connection.writer.close()
            idle.put_nowait(_Connection(*await asyncio.open_connection("127.0.0.1", port)))
            return
        if n >= warmup:
            result.done[n - warmup] = time.monotonic()
            result.statuses[status] = result.statuses.get(status, 0) + 1
        idle.put_nowait(connection)

    # Only the sends still in flight are kept: gathering every task at the end would run one
    # callback per finished send (tens of thousands) in a single loop turn, stalling the reads
    # of the last responses by tens of milliseconds and stamping them late.
    in_flight: set[asyncio.Task[None]] = set()
    with collector_paused():
        for n, at in enumerate(due):
            delay = at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(send(n))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        await asyncio.gather(*in_flight)
    while not idle.empty():
        idle.get_nowait().writer.close()
    return result


async def wait_http(port: int, timeout_s: float = 30) -> None:
    """Wait until `port` accepts TCP connections."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)
            continue
        writer.close()
        return
