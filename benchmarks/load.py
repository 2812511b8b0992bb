"""Closed-loop unary load: N callers, each sending its next call when the last one returns."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import grpc

from benchmarks.pauses import collector_paused
from posgate.clients.inventory import CHANNEL_OPTIONS, InventoryClient, meta
from posgate.contracts import inventory

pb = inventory.pb

# Each channel gets its own HTTP/2 connection; without this, channels with equal arguments
# share one subchannel (and so one TCP connection) inside the process.
OWN_CONNECTION = (("grpc.use_local_subchannel_pool", 1),)

Call = Callable[[InventoryClient, int], Awaitable[int]]
"""One call by `client` as the caller's `n`-th; returns how many movements were applied."""


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values (nan when empty)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass
class LoadResult:
    """What a closed-loop run completed inside its measurement window."""

    seconds: float
    calls: int = 0
    items: int = 0
    errors: int = 0
    applied_total: int = 0
    first_error: str = ""
    latencies_s: list[float] = field(default_factory=list)

    @property
    def calls_per_s(self) -> float:
        """Completed calls per second."""
        return self.calls / self.seconds

    @property
    def items_per_s(self) -> float:
        """Applied movements per second."""
        return self.items / self.seconds

    def latency_ms(self, fraction: float) -> float:
        """A latency percentile in milliseconds."""
        return 1000 * percentile(sorted(self.latencies_s), fraction)


def open_clients(target: str, token: str, channels: int) -> list[InventoryClient]:
    """`channels` typed clients, each on its own connection, with the client's production options."""
    return [
        InventoryClient(
            grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS + OWN_CONNECTION), token=token
        )
        for _ in range(channels)
    ]


async def closed_loop(
    clients: Sequence[InventoryClient], call: Call, *, concurrency: int, warmup_s: float, duration_s: float
) -> LoadResult:
    """Run `concurrency` callers spread over `clients`; count what completes after the warm-up."""
    start = time.monotonic()
    window = (start + warmup_s, start + warmup_s + duration_s)
    result = LoadResult(seconds=duration_s)

    async def caller(number: int) -> None:
        client = clients[number % len(clients)]
        sequence = 0
        while time.monotonic() < window[1]:
            sequence += 1
            began = time.monotonic()
            try:
                applied = await call(client, number * 10_000_000 + sequence)
            except grpc.aio.AioRpcError as error:
                result.errors += 1
                result.first_error = result.first_error or f"{error.code().name}: {error.details()}"
                await asyncio.sleep(0.05)
                continue
            ended = time.monotonic()
            result.applied_total += applied
            if window[0] <= ended < window[1]:
                result.calls += 1
                result.items += applied
                result.latencies_s.append(ended - began)

    with collector_paused():
        await asyncio.gather(*(caller(n) for n in range(concurrency)))
    return result


def movements(
    tenant_id: str, first: int, count: int, *, stores: int = 16, skus: int = 1000
) -> list[pb.Movement]:
    """`count` receipts with unique keys, spread over `stores` x `skus` positions."""
    return [
        pb.Movement(
            idempotency_key=f"{tenant_id}-{n}",
            key=pb.StockKey(
                tenant_id=tenant_id, store_id=f"s{n % stores}", sku=f"sku-{(n // stores) % skus}"
            ),
            type=pb.MOVEMENT_TYPE_RECEIPT,
            delta=1,
        )
        for n in range(first, first + count)
    ]


def applying(tenant_id: str, per_call: int) -> Call:
    """A call that applies `per_call` fresh movements of `tenant_id` and counts the applied ones."""

    async def call(client: InventoryClient, number: int) -> int:
        results = await client.apply_movements(movements(tenant_id, number * per_call, per_call))
        return sum(1 for r in results if r.outcome == pb.MOVEMENT_OUTCOME_APPLIED)

    return call


APPLY_MOVEMENTS = f"/{inventory.SERVICE_NAME}/ApplyMovements"


class Prepared:
    """Bulk ApplyMovements calls whose requests were serialised before the load began.

    The load generator shares the machine's two cores with the server and PostgreSQL. Building
    1,000 `Movement` messages in Python per call cost it about 2.4 µs per movement (4.2 µs in
    all, 0.15 core at 37,000 movements/s), CPU the measured processes then lacked; sending
    bytes made beforehand costs about 0.8 µs per movement. wrk, in the gateway's benchmark,
    reads deliveries signed beforehand in the same way.

    Caller `c`'s `s`-th call (`closed_loop` numbers it `c * 10_000_000 + s`) sends the same
    fresh movements as `applying` would. Past `calls_per_caller` a caller builds its requests
    in the window (counted in `built_late`), or, with `reuse` (for the echo, which keeps
    nothing), sends its prepared ones again.
    """

    def __init__(
        self, tenant_id: str, per_call: int, *, callers: int, calls_per_caller: int, token: str, reuse: bool
    ) -> None:
        """Serialise `calls_per_caller` requests for each of `callers` callers (seconds, for 1M movements)."""
        self._tenant_id, self._per_call, self._reuse = tenant_id, per_call, reuse
        self._calls_per_caller = calls_per_caller
        self._requests = {
            number: self._request(number)
            for caller in range(callers)
            for number in range(caller * 10_000_000 + 1, caller * 10_000_000 + calls_per_caller + 1)
        }
        self._metadata = (("authorization", f"Bearer {token}"),)
        self._methods: dict[int, grpc.aio.UnaryUnaryMultiCallable] = {}
        self.built_late = 0

    def _request(self, number: int) -> bytes:
        movements_ = movements(self._tenant_id, number * self._per_call, self._per_call)
        return pb.ApplyMovementsRequest(meta=meta(), movements=movements_).SerializeToString()

    async def __call__(self, client: InventoryClient, number: int) -> int:
        """Send caller-numbered call `number`; the count of movements applied."""
        if self._reuse:
            caller, sequence = divmod(number, 10_000_000)
            request = self._requests[caller * 10_000_000 + 1 + (sequence - 1) % self._calls_per_caller]
        elif (found := self._requests.pop(number, None)) is not None:
            request = found
        else:
            self.built_late += 1
            request = self._request(number)
        method = self._methods.get(id(client))
        if method is None:
            method = self._methods[id(client)] = client.channel.unary_unary(
                APPLY_MOVEMENTS,
                request_serializer=None,
                response_deserializer=pb.ApplyMovementsResponse.FromString,
            )
        response = await method(request, metadata=self._metadata, timeout=10.0)
        return sum(1 for r in response.results if r.outcome == pb.MOVEMENT_OUTCOME_APPLIED)
