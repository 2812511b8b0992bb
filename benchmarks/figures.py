"""The inventory benchmark's results: per-phase notes and the table of figures against goals."""

from __future__ import annotations

from dataclasses import dataclass

from benchmarks.cpu import CpuShare
from benchmarks.fanout import FanoutResult
from benchmarks.load import LoadResult
from benchmarks.report import Row, millis, rate


@dataclass
class Phase:
    """A measured load phase and the CPU it cost."""

    load: LoadResult
    cpu: CpuShare
    commits_per_s: float | None = None
    # Bulk calls whose request the load generator built in the window (`load.Prepared`).
    built_late: int = 0


@dataclass
class Ported:
    """One load measured on the inventory's stream edge and on its gRPC port (grpc.aio)."""

    edge: Phase
    grpc: Phase


@dataclass
class Wide:
    """The batched load with more callers, on the echo and on the edge.

    Four callers of 1,000 movements leave the service's two commit lanes waiting for work
    (docs/benchmark-history.md): this load is where its throughput stops growing.
    """

    echo: Phase
    edge: Phase


# The ledger tenant of each inventory load phase: gRPC port and edge, single and batched.
LOAD_TENANTS = ("unary", "batched", "unary-edge", "batched-edge", "batched-wide")


@dataclass
class Results:
    """Every phase of one run; `committed` is the ledger's movement count per load tenant."""

    echo_single: Phase
    echo_batched: Phase
    echo_fanout: FanoutResult
    single: Ported
    batched: Ported
    fanout: FanoutResult
    committed: dict[str, int]
    fanout_grpc: FanoutResult
    wide: Wide


def phase_notes(results: Results) -> list[str]:
    """CPU use, errors and the durability check of each phase."""
    lines = []
    for name, phase, tenant in (
        ("echo 1/call", results.echo_single, ""),
        ("echo batch", results.echo_batched, ""),
        ("echo wide", results.wide.echo, ""),
        ("edge 1/call", results.single.edge, "unary-edge"),
        ("edge batch", results.batched.edge, "batched-edge"),
        ("edge wide", results.wide.edge, "batched-wide"),
        ("grpc 1/call", results.single.grpc, "unary"),
        ("grpc batch", results.batched.grpc, "batched"),
    ):
        load = phase.load
        line = f"{name:12} cpu: {phase.cpu.describe()}; errors {load.errors}"
        if tenant:
            line += (
                f"; acknowledged {load.applied_total:,} applied, ledger holds {results.committed[tenant]:,}"
            )
        if phase.built_late:
            line += f"; {phase.built_late:,} calls built in the window (more than prepared)"
        if phase.commits_per_s is not None:
            line += f"; {phase.commits_per_s:,.0f} database commits/s"
        lines.append(line + (f"; first error: {load.first_error}" if load.first_error else ""))
        lines.append(f"{'':12} {phase.cpu.per_unit(load.items_per_s, 'movement')}")
    for name, fanout in (
        ("echo watch", results.echo_fanout),
        ("inv edge", results.fanout),
        ("inv grpc", results.fanout_grpc),
    ):
        if fanout.open_cpu is not None:
            lines.append(f"{name:12} cpu while opening: {fanout.open_cpu.describe()}")
        acks = ", ".join(f"{1000 * (r.acked - r.sent):.0f}" for r in fanout.rounds)
        lines.append(
            f"{name:12} {fanout.ready:,}/{fanout.streams:,} streams ready in {fanout.open_seconds:.1f} s, "
            f"failed {fanout.failed}; server RSS {fanout.rss_before_kib / 1024:.0f} -> "
            f"{fanout.rss_after_kib / 1024:.0f} MiB; ApplyMovements acknowledged after {acks} ms"
            + (f"; first error: {fanout.first_error}" if fanout.first_error else "")
        )
    return lines


def rows(
    results: Results,
    *,
    concurrency: int,
    batch_size: int,
    batch_callers: int,
    wide_callers: int,
    streams: int,
) -> list[Row]:
    """The table: each figure beside its same-run baseline and its goal."""
    echo, one, one_grpc = results.echo_single.load, results.single.edge.load, results.single.grpc.load
    echo_many, many = results.echo_batched.load, results.batched.edge.load
    many_grpc = results.batched.grpc.load
    watch, echo_watch, grpc_watch = results.fanout, results.echo_fanout, results.fanout_grpc
    ratio = one.calls_per_s / echo.calls_per_s if echo.calls_per_s else 0.0
    p99 = watch.delay_ms(0.99)
    per_stream = watch.rss_per_stream_kib()
    return [
        Row(
            f"ApplyMovements 1 movement/call, {concurrency} in flight (stream edge)",
            f"{rate(one.calls_per_s)} ({ratio:.0%} of echo)",
            f"echo {rate(echo.calls_per_s)}",
            ">= 50% of echo",
            ratio >= 0.5,
        ),
        Row("  latency p50", millis(one.latency_ms(0.50)), f"echo {millis(echo.latency_ms(0.50))}"),
        Row("  latency p99", millis(one.latency_ms(0.99)), f"echo {millis(echo.latency_ms(0.99))}"),
        Row(
            "  the same on the gRPC port (grpc.aio): calls, p99",
            f"{rate(one_grpc.calls_per_s)} ({_share(one_grpc.calls_per_s, echo.calls_per_s)} of echo)",
            millis(one_grpc.latency_ms(0.99)),
        ),
        Row(
            f"ApplyMovements {batch_size} movements/call, {batch_callers} callers (stream edge)",
            f"{rate(many.items_per_s)} movements",
            f"echo {rate(echo_many.items_per_s)}",
            "50,000/s",
            many.items_per_s >= 50_000,
        ),
        Row(
            "  call latency p50 / p99",
            f"{millis(many.latency_ms(0.5))} / {millis(many.latency_ms(0.99))}",
            f"echo {millis(echo_many.latency_ms(0.5))} / {millis(echo_many.latency_ms(0.99))}",
        ),
        Row(
            "  the same on the gRPC port (grpc.aio): movements",
            f"{rate(many_grpc.items_per_s)} movements",
            f"p99 {millis(many_grpc.latency_ms(0.99))}",
        ),
        *_wide_rows(results.wide, batch_size=batch_size, callers=wide_callers),
        Row(
            "WatchStock streams open in one process (stream edge)",
            f"{watch.ready:,} in {watch.open_seconds:.1f} s",
            f"echo {echo_watch.ready:,} in {echo_watch.open_seconds:.1f} s",
            f"{streams:,}",
            watch.ready == streams,
        ),
        Row(
            "  commit -> delivery p50",
            millis(watch.delay_ms(0.5)),
            f"echo {millis(echo_watch.delay_ms(0.5))}",
        ),
        Row(
            "  commit -> delivery p99",
            millis(p99),
            f"echo {millis(echo_watch.delay_ms(0.99))}",
            "< 500 ms",
            p99 < 500,
        ),
        Row(
            "  streams that got each change (worst of 3)",
            f"{watch.min_received():,} of {watch.ready:,}",
            f"echo {echo_watch.min_received():,} of {echo_watch.ready:,}",
            "all",
            watch.ready > 0 and watch.min_received() == watch.ready,
        ),
        Row(
            "  server RSS per stream",
            f"{per_stream:.1f} KiB",
            f"echo {echo_watch.rss_per_stream_kib():.1f} KiB",
            "< 10 KiB",
            per_stream < 10,
        ),
        Row(
            "  the same on the gRPC port (grpc.aio): p99 / RSS per stream",
            f"{millis(grpc_watch.delay_ms(0.99))} / {grpc_watch.rss_per_stream_kib():.1f} KiB",
            f"{grpc_watch.min_received():,} of {grpc_watch.ready:,} got each change",
        ),
    ]


def _wide_rows(wide: Wide, *, batch_size: int, callers: int) -> list[Row]:
    many, echo = wide.edge.load, wide.echo.load
    return [
        Row(
            f"ApplyMovements {batch_size} movements/call, {callers} callers (stream edge)",
            f"{rate(many.items_per_s)} movements",
            f"echo {rate(echo.items_per_s)}",
            "50,000/s",
            many.items_per_s >= 50_000,
        ),
        Row(
            "  call latency p50 / p99",
            f"{millis(many.latency_ms(0.5))} / {millis(many.latency_ms(0.99))}",
            f"echo {millis(echo.latency_ms(0.5))} / {millis(echo.latency_ms(0.99))}",
        ),
    ]


def _share(value: float, baseline: float) -> str:
    return f"{value / baseline:.0%}" if baseline else "-"
