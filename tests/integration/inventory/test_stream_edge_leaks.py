"""Streams on the stream edge leave nothing behind, however their clients leave."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest

from posgate.contracts import inventory
from posgate.runtime.edge import StreamEdge
from posgate.runtime.edge_calls import EdgeMethod
from posgate.services.inventory.component import WATCH_STOCK_PATH
from posgate.services.inventory.streams import StockHub
from tests.integration.inventory.watching import Ledger

pb = inventory.pb


@pytest.fixture
async def edge(hub: StockHub) -> AsyncIterator[StreamEdge]:
    def watch(request: inventory.pb.WatchStockRequest, _context: object) -> AsyncIterator[object]:
        return hub.watch_handoff(request)

    served = StreamEdge(
        "inventory", [EdgeMethod(WATCH_STOCK_PATH, pb.WatchStockRequest.FromString, watch)], None
    )
    await served.start("127.0.0.1", 0)
    yield served
    await served.drain(1)


async def open_streams(channel: grpc.aio.Channel, count: int) -> list[grpc.aio.UnaryStreamCall]:
    stub = inventory.grpc_api.InventoryServiceStub(channel)
    calls = [
        stub.WatchStock(pb.WatchStockRequest(tenant_id="t1", store_ids=[f"s{n % 3}"])) for n in range(count)
    ]
    for call in calls:
        first = await asyncio.wait_for(call.read(), 10)
        assert first.snapshot.complete
    return calls


async def until(condition, within: float = 10) -> None:
    for _ in range(int(within / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached")


async def test_a_client_that_drops_its_connection_leaves_no_subscriber(
    hub: StockHub,
    edge: StreamEdge,
) -> None:
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{edge.port}")
    await open_streams(channel, 200)
    assert hub.subscriber_count() == 200
    await channel.close(None)  # the whole connection goes, with its 200 live streams
    await until(lambda: hub.subscriber_count() == 0 and not edge.connections)
    assert hub.tracked_stores() == 0


async def test_streams_cancelled_one_by_one_leave_no_subscriber_and_others_go_on(
    sessions,
    hub: StockHub,
    edge: StreamEdge,
) -> None:
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{edge.port}")
    calls = await open_streams(channel, 60)
    for call in calls[:50]:
        call.cancel()
    await until(lambda: hub.subscriber_count() == 10)
    hub.publish(await Ledger(sessions).move(("s0", "a", 1), ("s1", "a", 1), ("s2", "a", 1)))
    for call in calls[50:]:
        update = await asyncio.wait_for(call.read(), 10)
        assert update.change.level.sequence == 1
    await channel.close(None)
    await until(lambda: hub.subscriber_count() == 0)
