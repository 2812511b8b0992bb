"""The pure parts of WatchStock: per-stream filtering, skipping, overflow, snapshot chunks, decoding."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from posgate.contracts import events, inventory
from posgate.errors import ResourceExhausted
from posgate.services.inventory import journal, stream_log
from posgate.services.inventory.domain import Kind, Level, Position
from posgate.services.inventory.stream_log import Item, change_item, snapshot_messages
from posgate.services.inventory.stream_subscriber import Subscriber

pb = inventory.pb
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def item(store: str, sequence: int, sku: str = "a") -> Item:
    level = pb.StockLevel(key=pb.StockKey(tenant_id="t1", store_id=store, sku=sku), sequence=sequence)
    return change_item(level, pb.MOVEMENT_TYPE_SALE, -1, f"e-{store}-{sequence}")


async def test_a_stream_gets_only_its_skus_in_order() -> None:
    subscriber = Subscriber("t1", frozenset({"s1"}), frozenset({"a"}), limit=10)
    for sequence, sku in enumerate(["a", "b", "a"], start=1):
        subscriber.offer(item("s1", sequence, sku))
    assert [(i.sku, i.sequence) for i in subscriber.queued()] == [("a", 1), ("a", 3)]
    assert (await subscriber.next()).sequence == 1
    assert (await subscriber.next()).sequence == 3


async def test_changes_the_initial_read_covered_are_skipped_once() -> None:
    subscriber = Subscriber("t1", None, None, limit=10)
    for sequence in (4, 5, 6):
        subscriber.offer(item("s1", sequence))
    subscriber.offer(item("s2", 1))
    subscriber.skip = {"s1": 5}
    assert [(i.store_id, i.sequence) for i in [await subscriber.next() for _ in range(2)]] == [
        ("s1", 6),
        ("s2", 1),
    ]
    assert subscriber.skip == {}, "the entry goes once a later change passed it"


async def test_a_waiting_stream_wakes_on_the_next_change() -> None:
    subscriber = Subscriber("t1", None, None, limit=10)
    waiting = asyncio.ensure_future(subscriber.next())
    await asyncio.sleep(0)
    assert not waiting.done()
    shared = item("s1", 1)
    subscriber.offer(shared)
    assert await asyncio.wait_for(waiting, 1) is shared, "subscribers share the item, never copy it"


async def test_a_full_queue_ends_the_stream_as_too_slow() -> None:
    subscriber = Subscriber("t1", None, None, limit=2)
    for sequence in (1, 2, 3):
        subscriber.offer(item("s1", sequence))
    assert subscriber.queued() == [], "an ended stream holds nothing"
    with pytest.raises(ResourceExhausted) as ended:
        await subscriber.next()
    assert ended.value.reason == "STREAM_TOO_SLOW"
    subscriber.offer(item("s1", 4))
    assert subscriber.queued() == []


def level(sku: str, sequence: int) -> Level:
    return Level(Position("t1", "s1", sku), on_hand=1, reserved=0, sequence=sequence, updated_at=NOW)


def test_snapshots_come_in_chunks_and_the_last_is_complete() -> None:
    levels = [level(f"sku-{n:04}", n + 1) for n in range(stream_log.SNAPSHOT_CHUNK * 2 + 1)]
    messages = snapshot_messages(levels, {"s1": 1001})
    assert [len(m.snapshot.levels) for m in messages] == [500, 500, 1]
    assert [m.snapshot.complete for m in messages] == [False, False, True]
    assert dict(messages[-1].snapshot.store_sequences) == {"s1": 1001}


def test_an_empty_snapshot_is_still_sent() -> None:
    (message,) = snapshot_messages([], {})
    assert message.snapshot.complete
    assert not message.snapshot.levels


def test_only_stock_changed_envelopes_are_decoded() -> None:
    change = journal.Change(level("a", 7), -2, Kind.SALE, "key-1", "event-1")
    envelope = events.new_envelope(
        events.pb.StockChanged(level=stream_log.item_from_change(change).response.change.level, delta=-2),
        tenant_id="t1",
        store_id="s1",
    )
    decoded = stream_log.decode_stock_changed(envelope.SerializeToString())
    assert decoded is not None
    tenant, (item,) = decoded
    assert (tenant, item.sku, item.sequence) == ("t1", "a", 7)
    assert item.response.change.event_id == envelope.event_id
    other = events.new_envelope(events.pb.LowStock(), tenant_id="t1")
    assert stream_log.decode_stock_changed(other.SerializeToString()) is None


def test_a_version_2_event_yields_every_change_it_carries_in_order() -> None:
    levels = [
        stream_log.item_from_change(journal.Change(level(sku, n), 1, Kind.RECEIPT, sku))
        for sku, n in (("a", 3), ("b", 4))
    ]
    entries = [events.pb.StockLevelChange(level=i.response.change.level, delta=1) for i in levels]
    payload = events.pb.StockChanged(level=entries[-1].level, delta=1, changes=entries)
    envelope = events.new_envelope(payload, tenant_id="t1", store_id="s1")
    decoded = stream_log.decode_stock_changed(envelope.SerializeToString())
    assert decoded is not None
    assert [(i.sku, i.sequence) for i in decoded[1]] == [("a", 3), ("b", 4)]
