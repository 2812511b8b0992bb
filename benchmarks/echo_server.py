"""The baseline: a bare grpc.aio server with the inventory API's shape and none of its work.

No database, no broker, no interceptors, no auth. `ApplyMovements` parses the request and echoes
each movement back as an applied result of the same shape the real service returns, so request
and response sizes match and the client code is exactly the same. `WatchStock` sends a one-level
snapshot, then every movement any later `ApplyMovements` echoes, from an in-memory queue per
stream: what gRPC alone costs per stream. Run: `python -m benchmarks.echo_server --port N`.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import AsyncIterator
from typing import Any

import grpc

from posgate.contracts import inventory

pb = inventory.pb


class EchoInventory:
    """ApplyMovements answered from the request alone; WatchStock fed from memory."""

    def __init__(self) -> None:
        """No streams yet; the sequence starts at 0."""
        self._sequence = 0
        self._watchers: set[asyncio.Queue[inventory.pb.WatchStockResponse]] = set()

    async def ApplyMovements(
        self, request: inventory.pb.ApplyMovementsRequest, context: Any
    ) -> inventory.pb.ApplyMovementsResponse:
        """Echo every movement as applied and pass it to every open stream."""
        results = []
        for m in request.movements:
            self._sequence += 1
            level = pb.StockLevel(key=m.key, on_hand=m.delta, available=m.delta, sequence=self._sequence)
            results.append(
                pb.MovementResult(
                    idempotency_key=m.idempotency_key, outcome=pb.MOVEMENT_OUTCOME_APPLIED, level=level
                )
            )
            if self._watchers:
                change = pb.WatchStockResponse(
                    change=pb.StockChange(level=level, cause=m.type, delta=m.delta)
                )
                for queue in self._watchers:
                    queue.put_nowait(change)
        return pb.ApplyMovementsResponse(results=results)

    async def WatchStock(
        self, request: inventory.pb.WatchStockRequest, context: Any
    ) -> AsyncIterator[inventory.pb.WatchStockResponse]:
        """A snapshot of one level per requested store and SKU, then every echoed movement."""
        queue: asyncio.Queue[inventory.pb.WatchStockResponse] = asyncio.Queue()
        self._watchers.add(queue)
        try:
            keys = [
                pb.StockKey(tenant_id=request.tenant_id, store_id=store, sku=sku)
                for store in request.store_ids
                for sku in request.skus
            ]
            yield pb.WatchStockResponse(
                snapshot=pb.StockSnapshot(
                    levels=[pb.StockLevel(key=key, sequence=self._sequence) for key in keys],
                    store_sequences={store: self._sequence for store in request.store_ids},
                    complete=True,
                )
            )
            while True:
                yield await queue.get()
        finally:
            self._watchers.discard(queue)


def handlers(echo: EchoInventory) -> grpc.GenericRpcHandler[Any, Any]:
    """The two methods under the inventory service's own name, so clients call them unchanged."""
    return grpc.method_handlers_generic_handler(
        inventory.SERVICE_NAME,
        {
            "ApplyMovements": grpc.unary_unary_rpc_method_handler(
                echo.ApplyMovements,
                request_deserializer=pb.ApplyMovementsRequest.FromString,
                response_serializer=pb.ApplyMovementsResponse.SerializeToString,
            ),
            "WatchStock": grpc.unary_stream_rpc_method_handler(
                echo.WatchStock,
                request_deserializer=pb.WatchStockRequest.FromString,
                response_serializer=pb.WatchStockResponse.SerializeToString,
            ),
        },
    )


async def serve(port: int) -> None:
    """Serve until SIGTERM or SIGINT."""
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    server.add_generic_rpc_handlers((handlers(EchoInventory()),))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print(f"echo: gRPC listening on 127.0.0.1:{port}", flush=True)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()
    await server.stop(1)


def main() -> None:
    """Parse `--port` and serve."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    asyncio.run(serve(parser.parse_args().port))


if __name__ == "__main__":
    main()
