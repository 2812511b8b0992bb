"""WatchStock against real SQLite and PostgreSQL: streams that start while commits land, lanes, gap reads."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter

import pytest

from posgate.services.inventory import ledger, stream_log
from posgate.services.inventory.batching import SPLIT_FROM, GroupCommitter
from posgate.services.inventory.domain import Kind, MovementCommand, Position
from tests.integration.inventory.watching import Ledger, Stream, seqs


@pytest.mark.parametrize("stores", [{"store_ids": ["s1"]}, {}], ids=["named", "tenant-wide"])
async def test_a_stream_whose_read_waits_behind_commits_starts_after_them(
    sessions, hub, monkeypatch, stores
) -> None:
    # As on SQLite, where the read waits for the write lock: every change is committed and
    # published after the stream registered but before its read, which then sees them all.
    book = Ledger(sessions)
    early = Stream(hub, tenant_id="t1", store_ids=["s1"])
    await early.snapshot()
    reading, gate = asyncio.Event(), asyncio.Event()
    read_initial = stream_log.read_initial

    async def held_read(*args, **kwargs) -> stream_log.InitialRead:
        reading.set()  # the stream registered: it reads after that
        await gate.wait()
        return await read_initial(*args, **kwargs)

    monkeypatch.setattr(stream_log, "read_initial", held_read)
    late = Stream(hub, tenant_id="t1", **stores)
    snapshot = asyncio.ensure_future(late.snapshot())
    await reading.wait()
    for _ in range(3):
        hub.publish(await book.move(("s1", "a", 1)))
    gate.set()
    _, sequences = await snapshot
    assert sequences == {"s1": 3}, "the read saw every commit: the stream is live at 3"
    hub.publish(await book.move(("s1", "a", 1)))
    assert seqs(await late.changes(1)) == [("s1", 4)]
    assert seqs(await early.changes(4)) == [("s1", n) for n in range(1, 5)]
    assert await late.silent() and await early.silent()


@pytest.mark.parametrize("second", [{"store_ids": ["s3"]}, {}], ids=["named", "tenant-wide"])
async def test_a_store_first_read_after_a_wide_stream_is_live_reaches_it_from_the_start(
    sessions, hub, second
) -> None:
    book = Ledger(sessions)
    wide = Stream(hub, tenant_id="t1")
    assert await wide.snapshot() == ([], {})  # live; s3 has no change yet
    first = await book.move(("s3", "a", 1))  # committed, not yet published
    # Another stream's read is the hub's first sight of s3: it must not start s3 at 1.
    other = Stream(hub, tenant_id="t1", **second)
    _, sequences = await other.snapshot()
    assert sequences == {"s3": 1}
    hub.publish(first)
    hub.publish(await book.move(("s3", "a", 1)))
    assert seqs(await wide.changes(1)) == [("s3", 1)]
    assert seqs(await wide.changes(1)) == [("s3", 2)]
    assert seqs(await other.changes(1)) == [("s3", 2)]
    assert await wide.silent() and await other.silent()


async def test_streams_starting_during_concurrent_commits_see_each_change_once(sessions, hub) -> None:
    book = Ledger(sessions)

    async def writer() -> None:
        for _ in range(40):
            hub.publish(await book.move(("s1", "a", 1), ("s2", "b", 1)))
            await asyncio.sleep(0)

    async def watcher(request: dict) -> dict[str, list[int]]:
        stream = Stream(hub, **request)
        seen: dict[str, list[int]] = {}
        while True:
            message = await stream.next()
            if message.WhichOneof("update") == "snapshot":
                for store, last in message.snapshot.store_sequences.items():
                    seen.setdefault(store, []).append(last)
            else:
                # A store absent from the snapshot had no change yet: its stream starts at 1.
                change = message.change
                seen.setdefault(change.level.key.store_id, [0]).append(change.level.sequence)
            # A read that waited for the last commit ends at 41 with the snapshot alone.
            if len(seen) == 2 and all(s[-1] == 41 for s in seen.values()):
                await stream.close()
                return seen

    write = asyncio.ensure_future(writer())
    watchers = []
    for index in range(6):
        await asyncio.sleep(0.01 * index)
        request = {"tenant_id": "t1"} if index % 2 else {"tenant_id": "t1", "store_ids": ["s1", "s2"]}
        watchers.append(asyncio.ensure_future(watcher(request)))
    await write
    hub.publish(await book.move(("s1", "a", 1), ("s2", "b", 1)))  # lets every watcher finish at 41
    for result in await asyncio.wait_for(asyncio.gather(*watchers), 60):
        for sequences in result.values():
            assert sequences == list(range(sequences[0], 42)), "consecutive, none twice"


async def test_changes_committed_by_two_lanes_reach_a_stream_in_order_once_each(
    sessions, hub, database_url: str
) -> None:
    # As the component wires it: two lanes on PostgreSQL, each commit fed to the hub. Large
    # calls are split over the lanes by store and small ones go whole to the first, so one
    # store's changes come from both lanes, in whatever order their commits finish.
    lanes = 2 if database_url.startswith("postgresql") else 1
    committer = GroupCommitter(sessions, ledger.apply_movements, on_commit=hub.publish, lanes=lanes)
    committer.start()
    stores = [f"lane-s{i}" for i in range(8)]
    stream = Stream(hub, tenant_id="t-lanes", store_ids=stores)
    _, started = await stream.snapshot()
    assert set(started.values()) == {0}
    keys = itertools.count()

    def call(size: int) -> list[MovementCommand]:
        return [
            MovementCommand(f"lane-{next(keys)}", Position("t-lanes", stores[i % 8], "sku"), Kind.RECEIPT, 1)
            for i in range(size)
        ]

    # Fewer changes than a stream may hold unread (1,024): all may commit before it reads.
    calls = [call(SPLIT_FROM * 2) if n % 3 == 0 else call(3) for n in range(12)]
    total = sum(len(c) for c in calls)
    reading = asyncio.ensure_future(stream.changes(total))  # read as they come, as a client does
    submitted = []
    try:
        for c in calls:  # staggered: many transactions, each lane's meeting the other's stores
            submitted.append(asyncio.ensure_future(committer.submit(c)))
            await asyncio.sleep(0.002)
        await asyncio.gather(*submitted)
    finally:
        await committer.stop()
    changes = await reading
    assert await stream.silent()
    per_store: dict[str, list[int]] = {}
    for change in changes:
        per_store.setdefault(change.level.key.store_id, []).append(change.level.sequence)
    # Every store: 1, 2, 3, ... with none missing or twice, and on hand ends at its count.
    expected = Counter(command.position.store_id for c in calls for command in c)
    assert {store: len(s) for store, s in per_store.items()} == expected
    assert all(sequence == list(range(1, len(sequence) + 1)) for sequence in per_store.values())
    last = {c.level.key.store_id: c.level for c in changes}
    assert all(level.on_hand == level.sequence for level in last.values())


async def test_gap_reads_page_through_change_log_rows_and_cut_inside_them(sessions) -> None:
    book = Ledger(sessions)
    await book.move(*(("s1", f"sku-{i % 3}", 1) for i in range(30)))  # one row: 1..30
    await book.move(*(("s1", f"sku-{i % 3}", 1) for i in range(30)))  # one row: 31..60
    for _ in range(70):  # seventy rows of one change: more than one page of rows
        await book.move(("s1", "sku-0", 1))

    def numbers(items: list[stream_log.Item]) -> list[int]:
        return [item.sequence for item in items]

    def read(after: int, upto: int, **options):
        return stream_log.read_changes(sessions, "t1", "s1", after=after, upto=upto, **options)

    assert numbers(await read(10, 50, limit=25)) == list(range(11, 36))
    assert numbers(await read(35, 50, limit=25)) == list(range(36, 51))
    assert numbers(await read(0, 130)) == list(range(1, 131))
    assert numbers(await read(58, 130, limit=1000)) == list(range(59, 131))
    only = await read(0, 60, skus=frozenset({"sku-1"}))
    assert numbers(only) == [n for n in range(1, 61) if (n - 1) % 30 % 3 == 1]
    assert {item.sku for item in only} == {"sku-1"}
    assert await read(130, 200) == []
