"""The printed report: machine facts, then one table of figure, measured, baseline and goal."""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path


@dataclass(frozen=True)
class Row:
    """One line of the table; `met` is None where a figure has no goal."""

    figure: str
    measured: str
    baseline: str = ""
    goal: str = ""
    met: bool | None = None


def machine_facts(database: dict[str, str]) -> list[str]:
    """Cores, CPU model, memory, Python, grpcio, protobuf, PostgreSQL and its durability settings."""
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown",
    )
    memory_kib = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    return [
        f"date        {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"machine     {os.cpu_count()} cores ({model}), {memory_kib / 2**20:.1f} GiB, {platform.platform()}",
        f"python      {sys.version.split()[0]}; grpcio {version('grpcio')}; protobuf {version('protobuf')}",
        f"postgresql  {database.get('server_version', '?')}; fsync={database.get('fsync', '?')}, "
        f"synchronous_commit={database.get('synchronous_commit', '?')}, "
        f"wal_sync_method={database.get('wal_sync_method', '?')}",
    ]


def table(rows: list[Row]) -> str:
    """An aligned plain-text table."""
    header = ("figure", "measured", "baseline (same run)", "goal", "met")
    cells = [header, *((r.figure, r.measured, r.baseline, r.goal, _met(r.met)) for r in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _met(met: bool | None) -> str:
    return "" if met is None else ("yes" if met else "NO")


def rate(value: float) -> str:
    """`12,345/s`."""
    return f"{value:,.0f}/s"


def millis(value: float) -> str:
    """`1.23 ms`."""
    return f"{value:,.2f} ms"
