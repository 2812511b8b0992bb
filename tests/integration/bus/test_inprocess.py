"""The in-process transport (`posgate dev`) delivers from the same outbox with the same guarantees."""

from __future__ import annotations

import sqlalchemy as sa

from posgate.bus.inprocess import InProcessBus
from posgate.bus.outbox import add_events
from posgate.bus.ports import IncomingEvent
from posgate.bus.relay import OutboxRelay
from posgate.bus.retry import Backoff
from posgate.bus.transport import build_event_bus
from posgate.db.tables import dead_letters
from posgate.settings import EventTransport, Settings
from tests.integration.bus.conftest import Db, Heard, event, wait_until
from tests.integration.bus.effects import effect_rows, recording_handler


def _bus(db: Db) -> tuple[InProcessBus, OutboxRelay]:
    bus = InProcessBus(db.sessions, max_attempts=3, backoff=Backoff(base_s=0.001, cap_s=0.01))
    return bus, OutboxRelay(db.sessions, bus)


async def test_committed_events_reach_matching_subscribers_exactly_once(db: Db) -> None:
    bus, relay = _bus(db)
    bus.subscribe("stock", ["inventory.*"], recording_handler("stock"))
    bus.subscribe("audit", ["#"], recording_handler("audit"))
    bus.subscribe("orders", ["orders.#"], recording_handler("orders"))
    stock, routed = event(n=1), event(routing_key="orders.routed", n=2)
    await db.write(stock, routed)
    async with db.sessions() as session, session.begin():
        await add_events(session, [event(n=3)])
        await session.rollback()

    assert await relay.publish_pending() == 2
    await bus.publish([stock])  # offered again, as after a crash before marking: the inbox skips it
    assert await relay.publish_pending() == 0

    assert sorted((consumer, event_id) for consumer, event_id, _ in await effect_rows(db.engine)) == sorted(
        [
            ("stock", stock.event_id),
            ("audit", stock.event_id),
            ("audit", routed.event_id),
            ("orders", routed.event_id),
        ]
    )


async def test_failing_handler_is_dead_lettered_with_its_reason(db: Db) -> None:
    bus, relay = _bus(db)
    attempts: list[int] = []

    async def fail(incoming: IncomingEvent, session) -> None:
        attempts.append(incoming.attempt)
        raise LookupError(f"no such store {incoming.partition_key}")

    bus.subscribe("fragile", ["inventory.*"], fail)
    bus.subscribe("stock", ["inventory.*"], recording_handler("stock"))
    bad = event()
    await db.write(bad)

    assert await relay.publish_pending() == 1

    assert attempts == [1, 2, 3]
    async with db.engine.connect() as connection:
        rows = (await connection.execute(sa.select(dead_letters))).mappings().all()
    assert [(r["consumer"], r["message_id"], r["routing_key"], r["reason"], r["body"]) for r in rows] == [
        ("fragile", bad.event_id, bad.routing_key, "LookupError: no such store store-1", bad.body)
    ]
    assert [(c, e) for c, e, _ in await effect_rows(db.engine)] == [("stock", bad.event_id)], (
        "one subscriber failing must not hold back the others"
    )


async def test_build_event_bus_runs_the_relay_in_the_background(db: Db) -> None:
    settings = Settings(event_transport=EventTransport.INPROCESS, relay_poll_interval_s=0.01)
    bus = build_event_bus(settings, db.sessions)
    bus.subscribe("stock", ["inventory.stock_changed"], recording_handler("stock"))
    await bus.start()
    try:
        assert await bus.healthy()
        written = [event(n=n) for n in range(5)]
        for item in written:
            await db.write(item)

        async def all_applied() -> bool:
            return len(await effect_rows(db.engine)) == len(written)

        await wait_until(all_applied, what="in-process delivery")
    finally:
        await bus.stop()
    assert [e for _, e, _ in await effect_rows(db.engine)] == [e.event_id for e in written]


async def test_listeners_hear_committed_events_and_a_failing_one_holds_back_nothing(db: Db) -> None:
    bus, relay = _bus(db)
    heard, failed_on = Heard(), []

    async def broken(incoming: IncomingEvent) -> None:
        failed_on.append(incoming.event_id)
        raise RuntimeError("stream gone")

    bus.listen(["#"], broken)
    bus.listen(["inventory.*"], heard, on_reconnect=heard.reconnected)
    bus.subscribe("stock", ["inventory.*"], recording_handler("stock"))
    stock, routed = event(n=1), event(routing_key="orders.routed", n=2)
    await db.write(stock, routed)
    async with db.sessions() as session, session.begin():
        await add_events(session, [event(n=3)])
        await session.rollback()

    assert await relay.publish_pending() == 2

    assert heard.ids() == [stock.event_id], "committed matching events only"
    assert heard.events[0].body == stock.body
    assert failed_on == [stock.event_id, routed.event_id]
    assert [(c, e) for c, e, _ in await effect_rows(db.engine)] == [("stock", stock.event_id)]
    assert await db.unpublished() == 0, "a failing listener must not fail the batch"
    assert heard.reconnects == 0, "there is nothing to reconnect to in process"


async def test_notify_committed_publishes_without_waiting_for_the_poll(db: Db) -> None:
    # A 30 s poll, far beyond the deadline below: only the wake-up can deliver in time.
    settings = Settings(event_transport=EventTransport.INPROCESS, relay_poll_interval_s=30.0)
    bus = build_event_bus(settings, db.sessions)
    heard = Heard()
    bus.listen(["inventory.*"], heard)
    first, second = event(n=1), event(n=2)
    await db.write(first)
    await bus.start()  # the relay's first round runs at once and takes `first`
    try:
        await wait_until(heard.heard(first), deadline_s=10, what="the first round")
        await db.write(second)  # the first round has read the outbox already
        bus.notify_committed()
        await wait_until(heard.heard(second), deadline_s=10, what="the woken relay")
    finally:
        await bus.stop()
    assert heard.ids() == [first.event_id, second.event_id]
