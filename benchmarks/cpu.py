"""Who used the two cores during a measurement window: load generator, server, database, broker."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

CpuSource = Callable[[], float]
"""CPU seconds some process (or group of processes) has used so far."""


def _machine() -> tuple[float, float, float]:
    """(busy, kernel, total) jiffies of all cores since boot; kernel = interrupts + steal."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    # user nice system idle iowait irq softirq steal: loopback TCP is processed in softirq,
    # which no process is charged for; steal is time the hypervisor gave to someone else.
    idle = fields[3] + fields[4]
    total = sum(fields[:8])
    return float(total - idle), float(fields[5] + fields[6] + fields[7]), float(total)


def process_seconds(pid: int) -> float:
    """User + system CPU seconds of one process (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def matching_seconds(*fragments: str) -> CpuSource:
    """CPU seconds of every process whose command line contains one of `fragments`.

    PostgreSQL names each backend `postgres: <user> <database> ...`, so a database name picks
    the backends serving it, `postgres: walwriter` the WAL writer; `beam.smp` picks RabbitMQ.
    """
    encoded = [fragment.encode() for fragment in fragments]

    def total() -> float:
        seconds = 0.0
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if any(fragment in command for fragment in encoded):
                seconds += process_seconds(int(entry.name))
        return seconds

    return total


@dataclass(frozen=True)
class CpuShare:
    """Cores used on average over a window (2.0 = both cores of this machine, all the time)."""

    client: float
    parts: Mapping[str, float]
    kernel: float
    machine: float

    def describe(self) -> str:
        """`client 0.90, server 0.80, irq+steal 0.10, other 0.10: 1.90 of 2 cores busy`."""
        other = max(0.0, self.machine - self.client - self.kernel - sum(self.parts.values()))
        named = {**self.parts, "irq+steal": self.kernel, "other": other}
        shares = ", ".join(f"{name} {value:.2f}" for name, value in named.items())
        return f"client {self.client:.2f}, {shares}: {self.machine:.2f} of {os.cpu_count()} cores busy"

    def per_unit(self, per_s: float, unit: str = "answer") -> str:
        """`µs of CPU per answer: server 135, postgres 61, irq+steal 15, machine 238`.

        What a run's share of the host comes from, in a form that compares across hosts and
        rates: each process that used any, the kernel's share and the whole machine.
        """
        if per_s <= 0:
            return f"µs of CPU per {unit}: none completed"
        named = {"client": self.client, **self.parts, "irq+steal": self.kernel, "machine": self.machine}
        used = {name: share for name, share in named.items() if share >= 0.005}
        costs = ", ".join(f"{name} {1e6 * share / per_s:.0f}" for name, share in used.items())
        return f"µs of CPU per {unit}: {costs}"


class CpuMeter:
    """Measures CPU between `start()` and `stop()`: this process, each named source, the machine."""

    def __init__(self, sources: Mapping[str, CpuSource]) -> None:
        """Also read the CPU seconds of each of `sources` (e.g. the server process)."""
        self._sources = sources
        self._start: tuple[float, float, dict[str, float], tuple[float, float, float]] | None = None

    def start(self) -> None:
        """Begin the window."""
        parts = {name: read() for name, read in self._sources.items()}
        self._start = (time.monotonic(), time.process_time(), parts, _machine())

    def stop(self) -> CpuShare:
        """End the window and return the average cores each used."""
        if self._start is None:
            raise RuntimeError("CpuMeter.stop() before start()")
        wall0, client0, parts0, (busy0, kernel0, total0) = self._start
        busy, kernel, total = _machine()
        wall = max(time.monotonic() - wall0, 1e-9)
        cores = (os.cpu_count() or 1) / max(total - total0, 1.0)
        return CpuShare(
            client=(time.process_time() - client0) / wall,
            parts={name: (read() - parts0[name]) / wall for name, read in self._sources.items()},
            kernel=cores * (kernel - kernel0),
            machine=cores * (busy - busy0),
        )


async def busy_cores(seconds: float = 1.0) -> float:
    """Cores busy over the next `seconds` (anything else running on the machine shows here)."""
    busy0, _, total0 = _machine()
    await asyncio.sleep(seconds)
    busy, _, total = _machine()
    return (os.cpu_count() or 1) * (busy - busy0) / max(total - total0, 1.0)


PROBE_STEPS = 1_000_000


def probe_ms(rounds: int = 3) -> float:
    """Milliseconds a fixed pure-Python loop takes, best of `rounds`: how fast this host is now.

    The same loop on the same Python does the same work everywhere, so runs on different hosts,
    or at different times on one host (whose speed drifts by tens of percent over minutes here),
    can be compared by it. Lower is faster.
    """
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        total = 0
        slots: dict[int, int] = {}
        for n in range(PROBE_STEPS):
            total += n * n % 7
            slots[n & 1023] = total
        best = min(best, time.perf_counter() - started)
    return best * 1000


def probe_line(when: str) -> str:
    """The probe's figure as a report line, e.g. `host probe  after run: 95 ms (...)`."""
    return f"host probe  {when}: {probe_ms():.0f} ms (a fixed Python loop, best of 3; lower is faster)"


async def before_run() -> list[str]:
    """Report lines on the machine before a benchmark: other work on it, and the host probe."""
    other = await busy_cores()
    lines = [f"before run  {other:.2f} of {os.cpu_count()} cores busy with other work"]
    if other > 0.2:
        lines.append("            WARNING: the machine is not idle; the figures below will be lower")
    lines.append(probe_line("before run"))
    return lines
