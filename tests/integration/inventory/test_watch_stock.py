"""WatchStock against real SQLite and PostgreSQL: snapshot, changes, resume, filters, gaps, slowness."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from posgate.errors import ResourceExhausted
from posgate.services.inventory import journal
from posgate.services.inventory.pruning import prune_changes
from posgate.services.inventory.streams import StockHub
from tests.integration.inventory.watching import Ledger, Stream, pb, seqs


async def test_snapshot_then_every_change_once(sessions, hub) -> None:
    book = Ledger(sessions)
    await book.move(("s1", "a", 5), ("s1", "b", 7), ("s2", "a", 1))
    stream = Stream(hub, tenant_id="t1", store_ids=["s1"])
    levels, sequences = await stream.snapshot()
    assert [(lv.key.sku, lv.on_hand, lv.sequence) for lv in levels] == [("a", 5, 1), ("b", 7, 2)]
    assert sequences == {"s1": 2}

    changes = await book.move(("s1", "a", -2), ("s2", "a", 3), ("s1", "b", 1))
    hub.publish(changes)
    for event in book.last_events:
        await hub.on_event(event)  # the same changes again, as RabbitMQ would bring them
    received = await stream.changes(2)
    assert seqs(received) == [("s1", 3), ("s1", 4)]
    first = received[0]
    assert (first.level.key.sku, first.level.on_hand, first.level.available, first.delta) == ("a", 3, 3, -2)
    assert first.cause == pb.MOVEMENT_TYPE_ADJUSTMENT
    assert first.event_id == changes[0].event_id
    assert await stream.silent()
    assert hub.subscriber_count() == 0


async def test_an_event_whose_changes_were_passed_on_is_dropped_without_decoding(
    sessions, hub, caplog
) -> None:
    book = Ledger(sessions)
    stream = Stream(hub, tenant_id="t1", store_ids=["s1"])
    await stream.snapshot()
    hub.publish(await book.move(("s1", "a", 1), ("s1", "b", 2)))  # what this replica committed
    (echo,) = book.last_events  # the same changes coming back from the broker
    assert echo.headers[journal.LAST_SEQUENCE_HEADER] == "2"
    await hub.on_event(dataclasses.replace(echo, body=b"never read"))
    unwatched = {**echo.headers, journal.STORE_HEADER: "s9"}
    await hub.on_event(dataclasses.replace(echo, body=b"never read", headers=unwatched))
    assert "undecodable" not in caplog.text
    newer = {**echo.headers, journal.LAST_SEQUENCE_HEADER: "3"}
    await hub.on_event(dataclasses.replace(echo, body=b"read", headers=newer))
    assert "undecodable event" in caplog.text
    assert seqs(await stream.changes(2)) == [("s1", 1), ("s1", 2)]
    assert await stream.silent()


async def test_an_unknown_store_gets_an_empty_complete_snapshot(hub) -> None:
    stream = Stream(hub, tenant_id="t1", store_ids=["nowhere"])
    assert await stream.snapshot() == ([], {"nowhere": 0})
    await stream.close()


async def test_reconnecting_after_a_burst_of_1000_changes_receives_exactly_those(sessions, hub) -> None:
    book = Ledger(sessions)
    await book.move(("s1", "a", 100), ("s2", "a", 1))
    stream = Stream(hub, tenant_id="t1", store_ids=["s1", "s2"])
    _, sequences = await stream.snapshot()
    hub.publish(await book.move(("s1", "a", 1)))
    (last,) = await stream.changes(1)
    await stream.close()
    assert hub.subscriber_count() == 0 and hub.tracked_stores() == 0

    for batch in range(20):  # 1,000 changes of s1 (and 4 of s2) while the client is away
        moves = [("s1", f"sku-{i % 7}", 1) for i in range(50)]
        hub.publish(await book.move(*moves, *([("s2", "a", 1)] if batch % 5 == 0 else [])))

    resumed = Stream(hub, tenant_id="t1", store_ids=["s1", "s2"], resume_after={"s1": last.level.sequence})
    missed = await resumed.changes(1000)
    assert seqs(missed) == [("s1", last.level.sequence + n) for n in range(1, 1001)]
    levels, snapshot_sequences = await resumed.snapshot()
    assert {lv.key.store_id for lv in levels} == {"s2"}, "no snapshot of the resumed store"
    assert snapshot_sequences == {"s2": sequences["s2"] + 4}
    hub.publish(await book.move(("s1", "a", 1)))
    (live,) = await resumed.changes(1)
    assert live.level.sequence == last.level.sequence + 1001
    assert await resumed.silent()


async def test_a_resume_point_the_log_cannot_serve_falls_back_to_a_snapshot(sessions, hub) -> None:
    book = Ledger(sessions)
    await book.move(("s1", "a", 1), ("s1", "a", 1))
    stream = Stream(hub, tenant_id="t1", store_ids=["s1"], resume_after={"s1": 99})
    levels, sequences = await stream.snapshot()
    assert [(lv.key.sku, lv.on_hand) for lv in levels] == [("a", 2)]
    assert sequences == {"s1": 2}
    await stream.close()


async def test_a_resume_point_pruned_from_the_log_falls_back_to_a_snapshot(sessions, hub) -> None:
    book = Ledger(sessions)
    for _ in range(6):
        await book.move(("s1", "a", 1))
    later = datetime.now(UTC) + timedelta(days=30)
    assert await prune_changes(sessions, later, retention=timedelta(days=1), keep=2) == 4

    pruned = Stream(hub, tenant_id="t1", store_ids=["s1"], resume_after={"s1": 2})
    kept = Stream(hub, tenant_id="t1", store_ids=["s1"], resume_after={"s1": 4})

    levels, sequences = await pruned.snapshot()
    assert [(lv.key.sku, lv.on_hand) for lv in levels] == [("a", 6)]
    assert sequences == {"s1": 6}
    assert seqs(await kept.changes(2)) == [("s1", 5), ("s1", 6)]
    await pruned.close()
    await kept.close()


async def test_filters_by_tenant_store_and_sku(sessions, hub) -> None:
    book = Ledger(sessions)
    await book.move(("s1", "a", 1), ("s1", "b", 1), ("s2", "a", 1))
    await book.move(("s1", "a", 1), tenant="t2")
    narrow = Stream(hub, tenant_id="t1", store_ids=["s1"], skus=["a"])
    wide = Stream(hub, tenant_id="t1")
    levels, sequences = await narrow.snapshot()
    assert [(lv.key.store_id, lv.key.sku) for lv in levels] == [("s1", "a")]
    assert sequences == {"s1": 2}
    levels, sequences = await wide.snapshot()
    assert [(lv.key.store_id, lv.key.sku) for lv in levels] == [("s1", "a"), ("s1", "b"), ("s2", "a")]
    assert sequences == {"s1": 2, "s2": 1}

    hub.publish(await book.move(("s1", "b", 1), ("s2", "a", 1), ("s3", "a", 1), ("s1", "a", 2)))
    hub.publish(await book.move(("s1", "a", 1), tenant="t2"))
    (only,) = await narrow.changes(1)
    assert (only.level.key.sku, only.level.sequence, only.delta) == ("a", 4, 2)
    everything = await wide.changes(4)
    assert seqs(everything) == [("s1", 3), ("s2", 2), ("s3", 1), ("s1", 4)]
    assert await narrow.silent() and await wide.silent()


async def test_changes_published_out_of_order_are_delivered_in_order(sessions, hub) -> None:
    book = Ledger(sessions)
    stream = Stream(hub, tenant_id="t1", store_ids=["s1"])
    assert await stream.snapshot() == ([], {"s1": 0})
    first = await book.move(("s1", "a", 1))
    second = await book.move(("s1", "b", 2), ("s1", "a", 3))
    third = await book.move(("s1", "c", 4))
    hub.publish(third)  # a gap: 1..3 are read back from the change log
    hub.publish(first)
    received = await stream.changes(4)
    assert seqs(received) == [("s1", 1), ("s1", 2), ("s1", 3), ("s1", 4)]
    assert [c.event_id for c in received] == [c.event_id for c in first + second + third]
    hub.publish(second)
    assert await stream.silent()


async def test_resync_reads_what_the_bus_lost(sessions, hub) -> None:
    book = Ledger(sessions)
    narrow, wide = Stream(hub, tenant_id="t1", store_ids=["s1"]), Stream(hub, tenant_id="t1")
    await narrow.snapshot()
    await wide.snapshot()
    await book.move(("s1", "a", 1), ("s9", "a", 1))  # never published: the bus was down
    await hub.resync()
    assert seqs(await narrow.changes(1)) == [("s1", 1)]
    assert sorted(seqs(await wide.changes(2))) == [("s1", 1), ("s9", 1)]
    await narrow.close()
    await wide.close()


async def test_a_slow_stream_is_ended_and_resumes_without_loss(sessions) -> None:
    hub = StockHub(sessions, queue_limit=5)
    book = Ledger(sessions)
    stream = Stream(hub, tenant_id="t1", store_ids=["s1"])
    await stream.snapshot()
    changes = await book.move(*[("s1", "a", 1)] * 10)
    hub.publish(changes)
    with pytest.raises(ResourceExhausted) as ended:
        await stream.next()
    assert ended.value.reason == "STREAM_TOO_SLOW"
    assert hub.subscriber_count() == 0
    resumed = Stream(hub, tenant_id="t1", store_ids=["s1"], resume_after={"s1": 0})
    assert [c.level.sequence for c in await resumed.changes(10)] == list(range(1, 11))
    await resumed.close()
    await hub.stop()


async def test_streams_leave_nothing_behind(sessions, hub) -> None:
    book = Ledger(sessions)
    await book.move(("s1", "a", 1))
    streams = [Stream(hub, tenant_id="t1", store_ids=["s1", "s2"]), Stream(hub, tenant_id="t1")]
    for stream in streams:
        await stream.snapshot()
    assert hub.subscriber_count() == 2 and hub.tracked_stores() == 2
    # One is cancelled while it waits for a change, as gRPC does when the client goes away.
    waiting = asyncio.ensure_future(streams[0].next())
    await asyncio.sleep(0.05)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await streams[1].close()
    assert hub.subscriber_count() == 0 and hub.tracked_stores() == 0
