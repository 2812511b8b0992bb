"""WatchStock fan-out: many streams on one position, one change, time until each stream has it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import grpc

from benchmarks.cpu import CpuMeter, CpuShare, CpuSource
from benchmarks.load import open_clients, percentile
from benchmarks.pauses import collector_paused
from posgate.clients.inventory import InventoryClient
from posgate.contracts import inventory

pb = inventory.pb
TENANT, STORE, SKU = "fanout", "s-fan", "sku-fan"


@dataclass
class Round:
    """One change: when it was sent and acknowledged, and when each stream received it."""

    sent: float
    acked: float
    arrivals: list[float] = field(default_factory=list)

    def delays_ms(self) -> list[float]:
        """Per receiving stream: milliseconds from just before the ApplyMovements call to arrival."""
        return sorted(1000 * (at - self.sent) for at in self.arrivals)


@dataclass
class FanoutResult:
    """What the fan-out phase saw."""

    streams: int
    ready: int = 0
    failed: int = 0
    first_error: str = ""
    open_seconds: float = 0.0
    rss_before_kib: int = 0
    rss_after_kib: int = 0
    rounds: list[Round] = field(default_factory=list)
    open_cpu: CpuShare | None = None

    def rss_per_stream_kib(self) -> float:
        """Server resident memory added per open stream."""
        return (self.rss_after_kib - self.rss_before_kib) / max(self.ready, 1)

    def delay_ms(self, fraction: float) -> float:
        """A percentile of the delivery delay over every round's deliveries."""
        return percentile(sorted(d for r in self.rounds for d in r.delays_ms()), fraction)

    def min_received(self) -> int:
        """Streams that received the change, in the worst round."""
        return min((len(r.arrivals) for r in self.rounds), default=0)


class Fleet:
    """`count` WatchStock streams over channels of `per_channel` streams each."""

    def __init__(
        self,
        target: str,
        token: str,
        count: int,
        per_channel: int,
        *,
        opening: int,
        key_prefix: str = "fanout",
    ) -> None:
        """Open at most `opening` streams at a time (each waits for its snapshot before the next)."""
        self.key_prefix = key_prefix
        self.clients = open_clients(target, token, -(-count // per_channel))
        self.count = count
        self.per_channel = per_channel
        self.result = FanoutResult(streams=count)
        self._opening = asyncio.Semaphore(opening)
        self._arrivals: dict[int, list[float]] = defaultdict(list)
        self._all_ready = asyncio.Event()
        self._delivered = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._ready_tasks: set[asyncio.Task[Any]] = set()

    async def open(self, timeout_s: float) -> None:
        """Start every stream and wait (at most `timeout_s`) until each has its complete snapshot.

        Streams still without a snapshot at the deadline are cancelled, so that the rounds that
        follow measure a fixed set of streams and the server is not busy opening the rest.
        """
        began = time.monotonic()
        self._tasks = [
            asyncio.create_task(self._follow(self.clients[n // self.per_channel])) for n in range(self.count)
        ]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._all_ready.wait(), timeout_s)
        self.result.open_seconds = time.monotonic() - began
        late = [task for task in self._tasks if task not in self._ready_tasks]
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)

    async def change_round(self, writer: InventoryClient, number: int, timeout_s: float) -> Round:
        """Apply one movement to the watched position; wait until every ready stream has it."""
        self._delivered.clear()
        sent = time.monotonic()
        results = await writer.apply_movements(
            [
                pb.Movement(
                    idempotency_key=f"{self.key_prefix}-round-{number}",
                    key=pb.StockKey(tenant_id=TENANT, store_id=STORE, sku=SKU),
                    type=pb.MOVEMENT_TYPE_RECEIPT,
                    delta=1,
                )
            ]
        )
        change = Round(sent=sent, acked=time.monotonic(), arrivals=self._arrivals[results[0].level.sequence])
        if len(change.arrivals) < self.result.ready:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._delivered.wait(), max(0.0, sent + timeout_s - time.monotonic()))
        self.result.rounds.append(change)
        return change

    async def close(self) -> None:
        """Cancel every stream and close the channels."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(*(client.close() for client in self.clients), return_exceptions=True)

    async def _follow(self, client: InventoryClient) -> None:
        stream = cast(
            AsyncGenerator[inventory.pb.WatchStockResponse, None],
            client.watch_stock(TENANT, store_ids=[STORE], skus=[SKU]),
        )
        try:
            async with self._opening:
                async for update in stream:
                    if update.HasField("snapshot") and update.snapshot.complete:
                        break
                else:
                    return
            self._ready()
            async for update in stream:
                if update.HasField("change"):
                    arrivals = self._arrivals[update.change.level.sequence]
                    arrivals.append(time.monotonic())
                    if len(arrivals) >= self.result.ready:
                        self._delivered.set()
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.CANCELLED:
                self.result.failed += 1
                self.result.first_error = self.result.first_error or f"{error.code().name}: {error.details()}"
        finally:
            # Ends the RPC (the client cancels it) when the stream stopped on its own.
            await stream.aclose()

    def _ready(self) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._ready_tasks.add(task)
        self.result.ready += 1
        if self.result.ready == self.count:
            self._all_ready.set()


async def measure_fanout(
    target: str,
    token: str,
    server_rss_kib: Callable[[], int],
    sources: Mapping[str, CpuSource],
    *,
    streams: int,
    per_channel: int = 100,
    rounds: int = 3,
    open_timeout_s: float = 90,
    stream_target: str | None = None,
    key_prefix: str = "fanout",
) -> FanoutResult:
    """Open `streams` streams, then time `rounds` changes from commit to every stream.

    The streams go to `stream_target` (a stream edge) when given, the changes always to `target`;
    `key_prefix` keeps the idempotency keys of several measurements on one database apart.
    """
    writer = open_clients(target, token, 1)[0]
    # The position exists before anyone watches it, so every snapshot carries one level.
    await writer.apply_movements(
        [
            pb.Movement(
                idempotency_key=f"{key_prefix}-seed",
                key=pb.StockKey(tenant_id=TENANT, store_id=STORE, sku=SKU),
                type=pb.MOVEMENT_TYPE_RECEIPT,
                delta=100,
            )
        ]
    )
    await asyncio.sleep(1)
    fleet = Fleet(stream_target or target, token, streams, per_channel, opening=200, key_prefix=key_prefix)
    fleet.result.rss_before_kib = server_rss_kib()
    try:
        meter = CpuMeter(sources)
        meter.start()
        await fleet.open(open_timeout_s)
        fleet.result.open_cpu = meter.stop()
        await asyncio.sleep(1)
        fleet.result.rss_after_kib = server_rss_kib()
        with collector_paused():
            for number in range(rounds):
                await fleet.change_round(writer, number, timeout_s=10)
                await asyncio.sleep(0.5)
    finally:
        await fleet.close()
        await writer.close()
    return fleet.result
