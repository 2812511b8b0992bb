"""Group commit of webhook deliveries: concurrent deliveries share transactions, each keeps its outcome."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from posgate.db.engine import create_engine, session_factory
from posgate.gateway.adapters.standard import StandardAdapter
from posgate.gateway.deliveries import Delivery
from posgate.gateway.ingestor import Ingestor
from posgate.gateway.mappings import MappingEntry
from posgate.gateway.pipeline import admit
from posgate.gateway.tables import MappingKind, commands, dedupe_keys, failures, raw_payloads
from tests.integration.gateway.conftest import MAPPED, SECRETS, count, load_mappings
from tests.unit.gateway.adapters.standard.cases import CASES, MERCHANT, NOW, SECRET

ADAPTER = StandardAdapter()


def movement(movement_id: str, item: str = "TSHIRT-L") -> Delivery:
    """An admitted delivery of one receipt of `item`, its own event."""
    body = json.dumps(
        {
            "type": "inventory.movements",
            "timestamp": "2024-05-01T09:31:12Z",
            "data": {
                "merchant_id": MERCHANT,
                "store_id": "berlin-1",
                "movements": [{"movement_id": movement_id, "item_id": item, "type": "receipt", "delta": 1}],
            },
        }
    ).encode()
    request = CASES.request(body, CASES.sign(body, SECRET, NOW))
    return admit(ADAPTER, request, SECRETS, NOW, "tenant-acme")


class CountingSessions:
    """The real session factory, counting the transactions opened through it."""

    def __init__(self, sessions) -> None:
        self.sessions = sessions
        self.kw = sessions.kw
        self.opened = 0

    def __call__(self, **options):
        self.opened += 1
        return self.sessions(**options)


async def test_concurrent_deliveries_share_a_transaction_and_keep_their_own_outcomes(sessions) -> None:
    await load_mappings(sessions, MAPPED)
    counting = CountingSessions(sessions)
    woken: list[int] = []
    ingestor = Ingestor(counting, on_commands=lambda: woken.append(1))
    unmapped = movement("m-unmapped", item="NOT-MAPPED")

    results = await asyncio.gather(
        *(ingestor.submit(movement(f"m-{n}")) for n in range(40)), ingestor.submit(unmapped)
    )

    assert [r.outcome for r in results[:40]] == ["accepted"] * 40
    assert (results[40].outcome, results[40].reason) == ("failed", "unmapped_sku")
    assert len({r.command_ids for r in results[:40]}) == 40
    assert all(r.new_command_ids == r.command_ids for r in results[:40])
    assert counting.opened <= 2  # 41 deliveries, at most two commits
    assert woken
    assert await count(sessions, commands) == 40
    assert await count(sessions, raw_payloads) == 41
    assert await count(sessions, failures, failures.c.reason == "unmapped_sku") == 1
    async with sessions() as session:
        stored = {row.raw_payload_id for row in await session.execute(select(commands.c.raw_payload_id))}
    assert stored == {r.raw_payload_id for r in results[:40]}


async def test_the_same_event_delivered_concurrently_is_accepted_once(sessions) -> None:
    await load_mappings(sessions, MAPPED)
    ingestor = Ingestor(sessions)
    same = [movement("m-twice") for _ in range(5)]

    results = await asyncio.gather(*(ingestor.submit(d) for d in same), ingestor.submit(movement("m-other")))

    outcomes = [r.outcome for r in results[:5]]
    assert outcomes.count("accepted") == 1
    assert outcomes.count("duplicate") == 4
    assert results[5].outcome == "accepted"
    assert await count(sessions, commands) == 2
    assert await count(sessions, dedupe_keys) == 2
    assert await count(sessions, failures, failures.c.failure_class == "duplicate") == 4


async def test_a_delivery_the_database_refuses_fails_alone(sessions) -> None:
    await load_mappings(sessions, MAPPED)
    ingestor = Ingestor(sessions)
    good = [movement(f"m-{n}") for n in range(3)]
    naive = movement("m-naive")
    # A naive receive time is refused by the timestamp column, in the middle of the batch.
    refused = replace(naive, request=replace(naive.request, received_at=NOW.replace(tzinfo=None)))

    results = await asyncio.gather(
        *(ingestor.submit(d) for d in good[:2]),
        ingestor.submit(refused),
        ingestor.submit(good[2]),
        return_exceptions=True,
    )

    assert isinstance(results[2], Exception)
    assert [r.outcome for r in (results[0], results[1], results[3])] == ["accepted"] * 3
    assert await count(sessions, commands) == 3
    assert await count(sessions, raw_payloads) == 3


async def test_a_mapping_added_elsewhere_is_seen_by_the_next_batch(sessions) -> None:
    await load_mappings(sessions, MAPPED)
    ingestor = Ingestor(sessions)
    before = await ingestor.submit(movement("m-early", item="HOODIE"))
    # As another gateway process would: through the table, not through this ingestor's cache.
    await load_mappings(sessions, [MappingEntry("standard", MERCHANT, MappingKind.SKU, "HOODIE", "ACME-HD")])

    after = await ingestor.submit(movement("m-late", item="HOODIE"))

    assert (before.outcome, before.reason) == ("failed", "unmapped_sku")
    assert after.outcome == "accepted"
    async with sessions() as session:
        body = (await session.execute(select(commands.c.body))).scalar_one()
    assert b"ACME-HD" in bytes(body)


@pytest.mark.parametrize("batch", [1, 3])
async def test_a_batch_never_holds_two_deliveries_of_one_event(sessions, batch: int) -> None:
    await load_mappings(sessions, MAPPED)
    counting = CountingSessions(sessions)
    ingestor = Ingestor(counting, max_batch=batch)

    results = await asyncio.gather(*(ingestor.submit(movement("m-same")) for _ in range(3)))

    assert sorted(r.outcome for r in results) == ["accepted", "duplicate", "duplicate"]
    assert counting.opened == 3  # one per delivery: they had to wait for each other


async def test_a_burst_is_split_between_the_lanes(sessions) -> None:
    await load_mappings(sessions, MAPPED)
    counting = CountingSessions(sessions)
    ingestor = Ingestor(counting)

    results = await asyncio.gather(*(ingestor.submit(movement(f"m-{n}")) for n in range(64)))

    assert [r.outcome for r in results] == ["accepted"] * 64
    # Two batches of 32 (the default cap), one per lane: neither lane idles while the other commits.
    assert counting.opened == 2

    # Both lanes now wait, idle, for work: the next burst wakes each of them.
    results = await asyncio.gather(*(ingestor.submit(movement(f"m-again-{n}")) for n in range(64)))

    assert [r.outcome for r in results] == ["accepted"] * 64
    assert counting.opened == 4
    assert ingestor._workers[0] is not None and not ingestor._workers[0].done()  # the same lanes
    assert await count(sessions, commands) == 128
    # Closing wakes the idle lanes at once; left to their linger (1 s) they would end later.
    await asyncio.wait_for(ingestor.close(), 0.5)
    assert all(worker is None or worker.done() for worker in ingestor._workers)


class BrokenDispatcher:
    """A dispatcher whose hand-over fails (a bug): callers must still get an answer."""

    lease = timedelta(seconds=15)

    def hand_over(self, claimed) -> None:
        raise RuntimeError("hand-over bug")


async def test_a_fault_after_the_commit_still_answers_every_caller(sessions) -> None:
    await load_mappings(sessions, MAPPED)
    ingestor = Ingestor(sessions, dispatcher=BrokenDispatcher())

    results = await asyncio.wait_for(
        asyncio.gather(*(ingestor.submit(movement(f"m-{n}")) for n in range(3)), return_exceptions=True), 10
    )

    assert all(isinstance(result, RuntimeError) for result in results)
    # Stored all the same: the dispatcher's claims will send them once their lease ends.
    assert await count(sessions, commands) == 3


async def test_lanes_committing_side_by_side_accept_each_event_once(sessions) -> None:
    await load_mappings(sessions, MAPPED)
    ingestor = Ingestor(sessions, lanes=2, max_batch=4)

    # Ten events, five deliveries each, arriving interleaved while both lanes are busy.
    results = await asyncio.gather(*(ingestor.submit(movement(f"m-{n % 10}")) for n in range(50)))

    outcomes = [r.outcome for r in results]
    assert outcomes.count("accepted") == 10
    assert outcomes.count("duplicate") == 40
    assert await count(sessions, commands) == 10
    assert await count(sessions, dedupe_keys) == 10
    await ingestor.close()


async def test_an_idle_lane_keeps_its_connection_and_gives_it_back_after_lingering(sessions) -> None:
    await load_mappings(sessions, MAPPED)
    counting = CountingSessions(sessions)
    ingestor = Ingestor(counting, lanes=1, linger=0.3)

    for n in range(3):
        assert (await ingestor.submit(movement(f"m-{n}"))).outcome == "accepted"
        await asyncio.sleep(0.05)
    kept = ingestor._lanes[0]._connection  # the lane's own connection is the subject
    assert kept is not None

    await asyncio.sleep(0.6)

    assert ingestor._lanes[0]._connection is None
    assert (await ingestor.submit(movement("m-late"))).outcome == "accepted"
    assert await count(sessions, commands) == 4
    await ingestor.close()


async def test_a_kept_connection_the_server_closed_is_replaced_without_failing_a_delivery(
    postgres_url: str,
) -> None:
    engine = create_engine(postgres_url)
    sessions = session_factory(engine)
    try:
        await load_mappings(sessions, MAPPED)
        ingestor = Ingestor(sessions, lanes=1, linger=30)
        assert (await ingestor.submit(movement("m-1"))).outcome == "accepted"
        async with engine.connect() as admin:
            # The lane's idle connection dies, as after a PostgreSQL restart or an idle timeout.
            killed = await admin.scalar(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
        assert killed >= 1

        result = await ingestor.submit(movement("m-2"))

        assert result.outcome == "accepted"
        assert await count(sessions, commands) == 2
        await ingestor.close()
    finally:
        await engine.dispose()


async def test_a_batch_stays_under_its_byte_limit_and_a_larger_body_goes_alone(sessions) -> None:
    await load_mappings(sessions, MAPPED)
    counting = CountingSessions(sessions)
    deliveries = [movement(f"m-{n}") for n in range(4)]
    size = len(deliveries[0].request.body)
    assert all(len(d.request.body) == size for d in deliveries)
    # Room for two bodies per batch; a limit below one body still stores it, alone.
    ingestor = Ingestor(counting, max_batch_bytes=2 * size)
    counting_tiny = CountingSessions(sessions)
    tiny = Ingestor(counting_tiny, max_batch_bytes=size // 2)

    results = await asyncio.gather(*(ingestor.submit(d) for d in deliveries))
    alone = await asyncio.gather(*(tiny.submit(movement(f"t-{n}")) for n in range(2)))
    await ingestor.close()
    await tiny.close()

    assert [r.outcome for r in results + alone] == ["accepted"] * 6
    assert counting.opened == 2  # four deliveries, two per batch
    assert counting_tiny.opened == 2  # each body over the limit, each alone
