"""WatchStock against real SQLite and PostgreSQL: snapshot, changes, resume, filters, gaps, slowness."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from posgate.bus.ports import IncomingEvent
from posgate.contracts import events, inventory
from posgate.db.engine import create_engine, session_factory
from posgate.db.tables import outbox
from posgate.errors import ResourceExhausted
from posgate.services.inventory import convert, journal, ledger, stream_log
from posgate.services.inventory.batching import SPLIT_FROM, GroupCommitter
from posgate.services.inventory.domain import Kind, Level, MovementCommand, Position
from posgate.services.inventory.pruning import prune_changes
from posgate.services.inventory.streams import StockHub

pb = inventory.pb
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
KIND_OF_CAUSE = {**{value: kind for value, kind in convert.KIND_FROM_PB.items()}, 0: Kind.RESERVATION}


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(database_url)
    yield session_factory(engine)
    await engine.dispose()


@pytest.fixture
async def hub(sessions) -> AsyncIterator[StockHub]:
    value = StockHub(sessions)
    await value.start()
    yield value
    await value.stop()


class Ledger:
    """Commits movements and hands back what the journal recorded (read from the outbox)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions
        self.outbox_id = 0
        self.keys = 0
        self.last_events: list[IncomingEvent] = []

    async def move(self, *moves: tuple[str, str, int], tenant: str = "t1") -> list[journal.Change]:
        """Apply (store, sku, delta) movements in one transaction; return the committed changes."""
        commands = []
        for store, sku, delta in moves:
            self.keys += 1
            commands.append(
                MovementCommand(f"k{self.keys}", Position(tenant, store, sku), Kind.ADJUSTMENT, delta)
            )
        async with self.sessions.begin() as session:
            await ledger.apply_movements(session, commands, NOW)
        self.last_events = await self.events()
        found = [change for e in self.last_events for change in changes_from_event(e)]
        # Events come per store; hand the changes back in the order the movements were given.
        return sorted(found, key=lambda change: int(change.idempotency_key[1:]))

    async def events(self) -> list[IncomingEvent]:
        """The `inventory.stock_changed` events written since the last call, as the bus delivers them."""
        query = (
            select(outbox)
            .where(outbox.c.id > self.outbox_id, outbox.c.routing_key == "inventory.stock_changed")
            .order_by(outbox.c.id)
        )
        async with self.sessions() as session:
            rows = (await session.execute(query)).mappings().all()
        if rows:
            self.outbox_id = rows[-1]["id"]
        return [
            IncomingEvent(
                r["event_id"], r["event_type"], r["routing_key"], r["body"], r["partition_key"], r["headers"]
            )
            for r in rows
        ]


def changes_from_event(event: IncomingEvent) -> list[journal.Change]:
    """The changes one `inventory.stock_changed` event carries, in order."""
    envelope = events.pb.EventEnvelope.FromString(event.body)
    assert envelope.schema_version == journal.STOCK_CHANGED_SCHEMA
    found = []
    for entry in envelope.inventory_stock_changed.changes:
        key = entry.level.key
        level = Level(
            Position(key.tenant_id, key.store_id, key.sku),
            entry.level.on_hand,
            entry.level.reserved,
            entry.level.sequence,
            entry.level.updated_at.ToDatetime(tzinfo=UTC),
            entry.level.count_version,
        )
        found.append(
            journal.Change(
                level, entry.delta, KIND_OF_CAUSE[entry.cause], entry.idempotency_key, envelope.event_id
            )
        )
    return found


class Stream:
    """A WatchStock client reading straight from the hub's iterator."""

    def __init__(self, hub: StockHub, **request) -> None:
        self.iterator = hub.watch(pb.WatchStockRequest(**request))

    async def next(self, within: float = 20.0) -> pb.WatchStockResponse:
        return await asyncio.wait_for(anext(self.iterator), within)

    async def snapshot(self) -> tuple[list[pb.StockLevel], dict[str, int]]:
        """Read snapshot chunks up to the complete one."""
        levels: list[pb.StockLevel] = []
        while True:
            message = await self.next()
            assert message.WhichOneof("update") == "snapshot", message
            levels.extend(message.snapshot.levels)
            if message.snapshot.complete:
                return levels, dict(message.snapshot.store_sequences)

    async def changes(self, count: int) -> list[pb.StockChange]:
        found = []
        for _ in range(count):
            message = await self.next()
            assert message.WhichOneof("update") == "change", message
            found.append(message.change)
        return found

    async def silent(self, seconds: float = 0.3) -> bool:
        """Whether nothing more arrives for a while (ends the stream: use last)."""
        try:
            message = await self.next(seconds)
        except TimeoutError:
            return True
        pytest.fail(f"unexpected message {message}")

    async def close(self) -> None:
        await self.iterator.aclose()


def seqs(changes: list[pb.StockChange]) -> list[tuple[str, int]]:
    return [(c.level.key.store_id, c.level.sequence) for c in changes]


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
