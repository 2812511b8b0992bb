"""The gateway benchmark's results: per-phase notes and the table of figures against goals."""

from __future__ import annotations

from dataclasses import dataclass, field

from benchmarks.cpu import CpuShare
from benchmarks.http_load import RateResult, WrkResult
from benchmarks.load import percentile
from benchmarks.report import Row, millis, rate


@dataclass
class WrkPhase:
    """A wrk run, the CPU it cost, and (gateway only) the deliveries the database accepted."""

    wrk: WrkResult
    cpu: CpuShare
    accepted: int | None = None
    commits_per_s: float | None = None


@dataclass
class RatePhase:
    """A fixed-rate run and the CPU it cost."""

    load: RateResult
    cpu: CpuShare


@dataclass
class EndToEnd:
    """Webhooks at a fixed rate, and when each one's stock change reached a WatchStock stream."""

    load: RateResult
    cpu: CpuShare
    arrivals: dict[int, float] = field(default_factory=dict)

    def delays_ms(self) -> list[float]:
        """Per accepted delivery that arrived: due time of the webhook → change on the stream."""
        return sorted(
            1000 * (at - self.load.due[n]) for n, at in self.arrivals.items() if n < len(self.load.due)
        )

    def delay_ms(self, fraction: float) -> float:
        """A percentile of the delivery delay."""
        return percentile(self.delays_ms(), fraction)

    def after_answer_ms(self, fraction: float) -> float:
        """A percentile of the part after the answer: webhook answered → change on the stream.

        The rest of the delay is the answer itself (`load.latency_ms`); this part is dispatch,
        the inventory's commit and the stream.
        """
        done = self.load.done
        return percentile(
            sorted(1000 * (at - done[n]) for n, at in self.arrivals.items() if n in done), fraction
        )


@dataclass
class Results:
    """Every phase of one run."""

    bare: WrkPhase
    bare_asyncio: WrkPhase
    floor: WrkPhase
    """A Starlette route answering as the gateway does, without its work (`benchmarks/bare_asgi.py`)."""
    gateway: WrkPhase
    half: RatePhase
    bare_half: RatePhase
    e2e: EndToEnd
    bare_two: WrkPhase
    gateway_two: WrkPhase


def notes(results: Results) -> list[str]:
    """CPU use and errors of each phase, and the durability check."""
    lines = []
    for name, phase in (
        ("bare uvloop", results.bare),
        ("bare asyncio", results.bare_asyncio),
        ("starlette", results.floor),
        ("gateway", results.gateway),
        ("bare x2", results.bare_two),
        ("gateway x2", results.gateway_two),
    ):
        line = f"{name:13} cpu: {phase.cpu.describe()}; errors {phase.wrk.describe_errors()}"
        if phase.accepted is not None:
            line += f"; wrk counted {phase.wrk.requests:,} answers, database accepted {phase.accepted:,}"
            line += f"; ids reused {phase.wrk.wraps}"
        if phase.commits_per_s is not None:
            line += f"; {phase.commits_per_s:,.0f} database commits/s"
        lines.append(line)
        lines.append(f"{'':13} {phase.cpu.per_unit(phase.wrk.per_s)}")
    for name, fixed in (("gateway rate", results.half), ("bare rate", results.bare_half)):
        load = fixed.load
        lines.append(
            f"{name:13} cpu: {fixed.cpu.describe()}; {len(load.done):,}/{len(load.due):,} answered at "
            f"{load.achieved_per_s:,.0f}/s, statuses {dict(sorted(load.statuses.items()))}, "
            f"errors {load.errors}" + (f" ({load.first_error})" if load.first_error else "")
        )
        lines.append(f"{'':13} {fixed.cpu.per_unit(load.achieved_per_s)}")
    e2e = results.e2e
    lines.append(
        f"{'end to end':13} cpu: {e2e.cpu.describe()}; statuses {dict(sorted(e2e.load.statuses.items()))}; "
        f"{len(e2e.arrivals):,} of {len(e2e.load.due):,} changes streamed; webhook answer p50 "
        f"{millis(e2e.load.latency_ms(0.5))} / p99 {millis(e2e.load.latency_ms(0.99))}"
    )
    return lines


def rows(results: Results, *, threads: int, connections: int, e2e_rate: float) -> list[Row]:
    """The table: each figure beside its same-run baseline and its goal."""
    bare, gateway = results.bare.wrk, results.gateway.wrk
    share = _share(gateway, bare)
    half, bare_half = results.half.load, results.bare_half.load
    half_p99 = half.latency_ms(0.99)
    e2e_p99 = results.e2e.delay_ms(0.99)
    return [
        Row(
            f"Signed webhooks accepted, wrk -t{threads} -c{connections}",
            f"{rate(gateway.per_s)} ({share:.1%} of bare)",
            f"bare ASGI {rate(bare.per_s)}",
            ">= 25% of bare",
            share >= 0.25,
        ),
        Row(
            "  same, bare ASGI on the asyncio loop",
            "",
            f"bare asyncio {rate(results.bare_asyncio.wrk.per_s)}",
        ),
        Row(
            "  same, a Starlette route doing no work (floor)",
            "",
            f"starlette {rate(results.floor.wrk.per_s)} ({_share(results.floor.wrk, bare):.1%} of bare)",
        ),
        Row("  latency p50", millis(gateway.p50_ms), f"bare {millis(bare.p50_ms)}"),
        Row("  latency p99", millis(gateway.p99_ms), f"bare {millis(bare.p99_ms)}"),
        *_two_processes(results),
        Row(
            f"Fixed rate {half.rate:,.0f}/s (half), latency p50",
            millis(half.latency_ms(0.5)),
            f"bare {millis(bare_half.latency_ms(0.5))}",
        ),
        Row(
            "  latency p99",
            millis(half_p99),
            f"bare {millis(bare_half.latency_ms(0.99))}",
            "< 10 ms",
            half_p99 < 10,
        ),
        Row(f"Webhook -> WatchStock change at {e2e_rate:,.0f}/s, p50", millis(results.e2e.delay_ms(0.5))),
        Row("  p99", millis(e2e_p99), "", "< 20 ms", e2e_p99 < 20),
        Row(
            "  after the answer (dispatch, commit, stream) p50 / p99",
            f"{millis(results.e2e.after_answer_ms(0.5))} / {millis(results.e2e.after_answer_ms(0.99))}",
        ),
        Row(
            "  changes streamed",
            f"{len(results.e2e.arrivals):,} of {results.e2e.load.statuses.get(202, 0):,} accepted",
            "",
            "all",
            len(results.e2e.arrivals) == results.e2e.load.statuses.get(202, 0) > 0,
        ),
        Row("Bulk import rows", "python -m benchmarks.imports", "", "50,000/s"),
    ]


def _share(run: WrkResult, baseline: WrkResult) -> float:
    """`run`'s answers per second as a share of `baseline`'s."""
    return run.per_s / baseline.per_s if baseline.per_s else 0.0


def _two_processes(results: Results) -> list[Row]:
    """The wrk figures of two processes each sharing the port, against both bare figures."""
    two, bare_two, bare = results.gateway_two.wrk, results.bare_two.wrk, results.bare.wrk
    of_two, of_one = _share(two, bare_two), _share(two, bare)
    return [
        Row(
            "  same, 2 processes each (SO_REUSEPORT)",
            f"{rate(two.per_s)} ({of_two:.1%} of bare x2, {of_one:.1%} of bare)",
            f"bare ASGI x2 {rate(bare_two.per_s)}",
        ),
        Row("    latency p50 / p99", f"{millis(two.p50_ms)} / {millis(two.p99_ms)}"),
    ]
