"""A batch of new accepted deliveries stored by one statement on PostgreSQL (`gateway.ingest_new`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from posgate.bus.held import HeldConnection
from posgate.contracts import inventory
from posgate.db import raw
from posgate.db.engine import create_engine, session_factory
from posgate.gateway import ingest_new, mappings
from posgate.gateway.deliveries import Delivery, IngestResult
from posgate.gateway.ingest_store import store, store_cached
from posgate.gateway.ingestor import Ingestor
from posgate.gateway.mapping_cache import MappingCache
from posgate.gateway.mappings import MappingEntry
from posgate.gateway.pipeline import decide, decide_cached
from posgate.gateway.tables import CommandState, MappingKind, commands, dedupe_keys, failures, raw_payloads
from tests.integration.gateway.conftest import MAPPED, count, load_mappings
from tests.integration.gateway.test_ingestor import movement
from tests.unit.gateway.adapters.standard.cases import MERCHANT, NOW


@pytest.fixture
async def sessions(postgres_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(postgres_url)
    try:
        await load_mappings(session_factory(engine), MAPPED)
        yield session_factory(engine)
    finally:
        await engine.dispose()


@pytest.fixture
async def cache(sessions) -> MappingCache:
    """The merchant's mappings cached, as in an ingestor that has taken deliveries before."""
    warm = MappingCache()
    async with sessions() as session:
        await warm.snapshots(session, [("standard", MERCHANT)])
    return warm


async def _store(
    sessions: async_sessionmaker[AsyncSession],
    cache: MappingCache,
    deliveries: list[Delivery],
    *,
    before_store=None,
) -> tuple[list[IngestResult], bool]:
    """Decide and store as the ingestor does; whether the batch went to the one statement."""
    held = HeldConnection(sessions)
    try:
        async with held.begin(deferred=True) as session:
            verdicts = await decide(session, deliveries, cache)
            if before_store is not None:
                await before_store(verdicts)
            one_statement = raw.autocommits(session) and ingest_new.eligible(verdicts)
            return await store(session, verdicts), one_statement
    finally:
        await held.close()


async def test_new_deliveries_are_stored_with_claims_and_commands_without_a_transaction(
    sessions, cache
) -> None:
    results, one_statement = await _store(
        sessions, cache, [movement("m-1"), movement("m-2"), movement("m-3")]
    )

    assert one_statement
    assert [r.outcome for r in results] == ["accepted"] * 3
    assert all(r.new_command_ids == r.command_ids and len(r.command_ids) == 1 for r in results)
    async with sessions() as session:
        raws = {row.id: row for row in await session.execute(select(raw_payloads))}
        claims = {row.raw_payload_id for row in await session.execute(select(dedupe_keys))}
        stored = {row.id: row for row in await session.execute(select(commands))}
    assert sorted(raws) == sorted(r.raw_payload_id for r in results)
    assert [raws[r.raw_payload_id].outcome for r in results] == ["accepted"] * 3
    assert {raws[r.raw_payload_id].store_id for r in results} == {"store-berlin"}
    assert raws[results[0].raw_payload_id].headers == movement("m-1").request.headers
    assert claims == set(raws)
    for result in results:
        [command_id] = result.command_ids
        assert stored[command_id].raw_payload_id == result.raw_payload_id
        assert stored[command_id].state == CommandState.PENDING
    # Ids ascend in arrival order.
    assert [r.raw_payload_id for r in results] == sorted(r.raw_payload_id for r in results)


async def test_a_claim_a_concurrent_transaction_won_makes_the_delivery_a_duplicate(sessions, cache) -> None:
    [first], _ = await _store(sessions, cache, [movement("m-1")])
    again = movement("m-1")

    # The first delivery's claim is hidden from the look-up, then put back before the write.
    async with sessions() as session:
        await session.execute(
            dedupe_keys.update().values(dedupe_key="moved").where(dedupe_keys.c.dedupe_key == again.key)
        )
        await session.commit()

    async def restore(verdicts) -> None:
        assert verdicts[0].duplicate_of is None
        async with sessions() as session:
            await session.execute(
                dedupe_keys.update().values(dedupe_key=again.key).where(dedupe_keys.c.dedupe_key == "moved")
            )
            await session.commit()

    [result, fresh], one_statement = await _store(
        sessions, cache, [again, movement("m-2")], before_store=restore
    )

    assert one_statement
    assert (result.outcome, result.reason) == ("duplicate", "duplicate_delivery")
    assert result.command_ids == ()
    assert fresh.outcome == "accepted"
    async with sessions() as session:
        outcome = (
            await session.execute(
                select(raw_payloads.c.outcome).where(raw_payloads.c.id == result.raw_payload_id)
            )
        ).scalar_one()
        failure = (await session.execute(select(failures).where(failures.c.id == result.failure_id))).one()
    assert outcome == "duplicate"
    assert (failure.failure_class, failure.raw_payload_id) == ("duplicate", result.raw_payload_id)
    assert failure.detail == f"first accepted as raw payload {first.raw_payload_id}"
    assert await count(sessions, commands) == 2  # the first delivery's and m-2's


async def test_a_command_another_delivery_stored_is_reused_not_written_twice(sessions, cache) -> None:
    [first], _ = await _store(sessions, cache, [movement("m-1")])
    # The same event under another de-duplication key (a vendor that re-signs its retries).
    async with sessions() as session:
        await session.execute(dedupe_keys.delete())
        await session.commit()

    [again], one_statement = await _store(sessions, cache, [movement("m-1")])

    assert one_statement
    assert again.outcome == "accepted"
    assert again.command_ids == first.command_ids
    assert again.new_command_ids == ()
    assert await count(sessions, commands) == 1


async def _store_cached(
    sessions: async_sessionmaker[AsyncSession], cache: MappingCache, deliveries: list[Delivery]
) -> list[IngestResult] | None:
    """Decide on the cached mappings alone and store in one statement, as the ingestor tries first."""
    held = HeldConnection(sessions)
    try:
        async with held.begin(deferred=True) as session:
            decided = await decide_cached(session, deliveries, cache)
            assert decided is not None
            return await store_cached(session, *decided)
    finally:
        await held.close()


async def test_cached_mappings_decide_and_store_a_batch_without_a_look_up(sessions, cache) -> None:
    async with sessions() as session:
        assert await decide_cached(session, [movement("m-0")], MappingCache()) is None  # nothing cached

    results = await _store_cached(sessions, cache, [movement("m-1"), movement("m-2")])

    assert results is not None
    assert [r.outcome for r in results] == ["accepted"] * 2
    assert all(len(r.new_command_ids) == 1 for r in results)
    assert await count(sessions, raw_payloads) == 2
    assert await count(sessions, dedupe_keys) == 2
    assert await count(sessions, commands, commands.c.state == CommandState.PENDING) == 2


async def test_a_mapping_changed_since_it_was_cached_writes_nothing_then_the_new_one_applies(
    sessions, cache
) -> None:
    # Another process (the admin API) maps the item anew after this one cached the mappings.
    moved = MappingEntry("standard", MERCHANT, MappingKind.SKU, "TSHIRT-L", "ACME-TS-L-2024")
    async with sessions() as session:
        await mappings.upsert(session, [moved], NOW)
        await session.commit()

    assert await _store_cached(sessions, cache, [movement("m-1")]) is None
    assert await count(sessions, raw_payloads) == 0
    assert await count(sessions, dedupe_keys) == 0

    ingestor = Ingestor(sessions, cache=cache)
    try:
        result = await ingestor.submit(movement("m-1"))
        again = await ingestor.submit(movement("m-2"))
    finally:
        await ingestor.close()
    assert (result.outcome, again.outcome) == ("accepted", "accepted")
    async with sessions() as session:
        bodies = (await session.execute(select(commands.c.body).order_by(commands.c.id))).scalars().all()
    skus = [inventory.pb.ApplyMovementsRequest.FromString(body).movements[0].key.sku for body in bodies]
    assert skus == ["ACME-TS-L-2024", "ACME-TS-L-2024"]


async def test_a_delivery_stored_before_is_a_duplicate_found_by_its_claim(sessions, cache) -> None:
    [first] = await _store_cached(sessions, cache, [movement("m-1")]) or []

    [again] = await _store_cached(sessions, cache, [movement("m-1")]) or []

    assert (again.outcome, again.reason) == ("duplicate", "duplicate_delivery")
    assert again.command_ids == ()
    async with sessions() as session:
        failure = (await session.execute(select(failures).where(failures.c.id == again.failure_id))).one()
    assert failure.detail == f"first accepted as raw payload {first.raw_payload_id}"
    assert await count(sessions, commands) == 1


async def test_values_sent_as_json_parameters_are_stored_exactly(sessions, cache) -> None:
    # Times with microseconds and another offset, headers with quotes and non-ASCII text, a
    # body of bytes that are not UTF-8: what the JSON and bytea parameters must carry unchanged.
    delivery = movement("m-1")
    received = datetime(2024, 5, 1, 11, 33, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    headers = {**delivery.request.headers, "x-note": 'caf\u00e9 "quoted" \\ \u2028'}
    body = delivery.request.body + b" \xff\xfe"
    delivery.request = replace(delivery.request, received_at=received, headers=headers, body=body)

    [result], one_statement = await _store(sessions, cache, [delivery])

    assert one_statement and result.outcome == "accepted"
    async with sessions() as session:
        stored = (await session.execute(select(raw_payloads))).one()
        command = (await session.execute(select(commands))).one()
        claim = (await session.execute(select(dedupe_keys))).one()
    assert (stored.body, stored.headers, stored.received_at) == (body, headers, received)
    assert stored.received_at.utcoffset() == timedelta(0)  # the same instant, in UTC
    assert claim.created_at == command.created_at == delivery.now
    assert (command.state, command.attempts, command.next_attempt_at) == ("pending", 0, delivery.now)
    [moved] = inventory.pb.ApplyMovementsRequest.FromString(command.body).movements
    assert (moved.key.sku, moved.delta) == ("ACME-TS-L", 1)
