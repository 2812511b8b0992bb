"""Streams opening together with one filter share one initial read, and lose nothing by it."""

from __future__ import annotations

import asyncio

from posgate.contracts import inventory
from posgate.services.inventory.streams import StockHub
from tests.integration.inventory.watching import Ledger

pb = inventory.pb


async def test_a_storm_of_streams_with_one_filter_reads_once(sessions, hub: StockHub) -> None:
    book = Ledger(sessions)
    await book.move(("s1", "a", 5), ("s1", "b", 7), ("s2", "a", 1))
    streams = [hub.watch(pb.WatchStockRequest(tenant_id="t1", store_ids=["s1"])) for _ in range(50)]
    firsts = await asyncio.wait_for(asyncio.gather(*(anext(s) for s in streams)), 10)

    assert hub.reads.reads == 1
    for first in firsts:
        assert first.snapshot.complete
        assert {(level.key.sku, level.on_hand) for level in first.snapshot.levels} == {("a", 5), ("b", 7)}
        assert dict(first.snapshot.store_sequences) == {"s1": 2}

    hub.publish(await book.move(("s1", "a", -2)))
    updates = await asyncio.wait_for(asyncio.gather(*(anext(s) for s in streams)), 10)
    assert [(u.change.level.sequence, u.change.level.on_hand) for u in updates] == [(3, 3)] * 50
    for stream in streams:
        await stream.aclose()


async def test_different_filters_and_resumes_read_apart(sessions, hub: StockHub) -> None:
    book = Ledger(sessions)
    await book.move(("s1", "a", 5), ("s2", "a", 1))
    streams = [
        hub.watch(pb.WatchStockRequest(tenant_id="t1", store_ids=["s1"])),
        hub.watch(pb.WatchStockRequest(tenant_id="t1", store_ids=["s2"])),
        hub.watch(pb.WatchStockRequest(tenant_id="t1", store_ids=["s1"], skus=["a"])),
        hub.watch(pb.WatchStockRequest(tenant_id="t1", store_ids=["s1"], resume_after={"s1": 0})),
    ]
    firsts = await asyncio.wait_for(asyncio.gather(*(anext(s) for s in streams)), 10)
    assert hub.reads.reads == 4
    assert [f.WhichOneof("update") for f in firsts] == ["snapshot", "snapshot", "snapshot", "change"]
    for stream in streams:
        await stream.aclose()


async def test_a_member_that_leaves_does_not_take_the_read_with_it(sessions, hub: StockHub) -> None:
    book = Ledger(sessions)
    await book.move(("s1", "a", 5))
    leaving = asyncio.ensure_future(anext(hub.watch(pb.WatchStockRequest(tenant_id="t1", store_ids=["s1"]))))
    staying = hub.watch(pb.WatchStockRequest(tenant_id="t1", store_ids=["s1"]))
    first = asyncio.ensure_future(anext(staying))
    await asyncio.sleep(0)
    leaving.cancel()
    snapshot = (await asyncio.wait_for(first, 10)).snapshot
    assert snapshot.complete and [level.on_hand for level in snapshot.levels] == [5]
    assert hub.reads.reads == 1
    await staying.aclose()
