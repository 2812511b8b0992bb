"""The relay, consumers and listeners ride out a RabbitMQ restart: nothing written is lost."""

from __future__ import annotations

import asyncio

import pytest

from posgate.bus.rabbit import broker_reachable
from posgate.bus.transport import build_event_bus
from tests.integration.bus.conftest import Db, Heard, Rabbit, drain, event, wait_until
from tests.integration.bus.effects import effect_rows, recording_handler

pytestmark = [pytest.mark.rabbitmq, pytest.mark.slow]

PER_PHASE = 25


async def rabbitmqctl(*args: str) -> None:
    process = await asyncio.create_subprocess_exec(
        "rabbitmqctl", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, (args, stdout, stderr)


async def write_phase(db: Db, phase: str) -> list[tuple[str, str]]:
    """Commit events one transaction at a time, as producers would, a few stores interleaved."""
    written = []
    for n in range(PER_PHASE):
        item = event(n=n, store=f"store-{n % 4}")
        await db.write(item)
        written.append((item.event_id, f"store-{n % 4}"))
        await asyncio.sleep(0.01)
    print(f"{phase}: wrote {PER_PHASE}")
    return written


async def test_relay_and_consumer_survive_a_broker_restart(
    pg_db: Db, rabbit: Rabbit, caplog: pytest.LogCaptureFixture
) -> None:
    settings = rabbit.settings
    probe = await rabbit.probe_queue("restart-probe", ["inventory.#"])  # counts every copy, duplicates too
    rabbit.consumers.append("restart")
    bus = build_event_bus(settings, pg_db.sessions)
    bus.subscribe("restart", ["inventory.#"], recording_handler("restart"))
    await bus.start()
    written: list[tuple[str, str]] = []
    try:
        written += await write_phase(pg_db, "before")
        await wait_until(lambda: _published(pg_db), what="the first phase to be published")
        try:
            stopping, _ = await asyncio.gather(write_phase(pg_db, "while stopping"), rabbitmqctl("stop_app"))
            written += stopping
            written += await write_phase(pg_db, "during")
            await asyncio.sleep(1.0)  # let the relay fail and back off a few times
            assert not await bus.healthy()
        finally:
            await rabbitmqctl("start_app")
        await wait_until(lambda: broker_reachable(settings.amqp_url), deadline_s=60, what="the broker")
        written += await write_phase(pg_db, "after")

        await wait_until(lambda: _published(pg_db), deadline_s=60, what="the relay to catch up")

        async def all_applied() -> bool:
            return len(await effect_rows(pg_db.engine)) >= len(written)

        await wait_until(all_applied, deadline_s=60, what="the consumer to apply every event")
        assert await bus.healthy()
    finally:
        await bus.stop()

    ids = [event_id for event_id, _ in written]
    copies = [message.message_id for message in await drain(probe, expect=len(ids), deadline_s=30)]
    applied = [event_id for _, event_id, _ in await effect_rows(pg_db.engine)]
    relay_failures = sum(
        record.name == "posgate.bus.relay" and str(record.msg).startswith("outbox relay failed")
        for record in caplog.records
    )
    print(
        f"written={len(ids)} published={len(set(copies))} copies_received={len(copies)} "
        f"duplicates_received={len(copies) - len(set(copies))} applied={len(applied)} "
        f"relay_failures={relay_failures}"
    )
    assert set(copies) == set(ids), "an event was lost"
    assert sorted(applied) == sorted(ids), "each event must take effect exactly once"
    store_of = dict(written)
    for store in sorted(set(store_of.values())):
        expected = [event_id for event_id, s in written if s == store]
        assert [e for e in applied if store_of[e] == store] == expected, f"{store} applied out of order"


async def _published(db: Db) -> bool:
    return await db.unpublished() == 0


async def test_listener_is_bound_again_and_told_after_a_broker_restart(pg_db: Db, rabbit: Rabbit) -> None:
    bus = build_event_bus(rabbit.settings, pg_db.sessions)
    heard = Heard()
    bus.listen(["inventory.#"], heard, on_reconnect=heard.reconnected)
    await bus.start()
    listener = bus._listeners.listeners[0]
    try:
        before = event(n=1)
        await pg_db.write(before)
        bus.notify_committed()
        await wait_until(heard.heard(before), what="the event before the restart")
        queue_before = listener.queue_name
        try:
            await rabbitmqctl("stop_app")
            await wait_until(_unhealthy(bus), what="the bus to notice the broker is gone")
        finally:
            await rabbitmqctl("start_app")

        async def reconnected() -> bool:
            return heard.reconnects > 0

        await wait_until(reconnected, deadline_s=60, what="on_reconnect")
        after = event(n=2)
        await pg_db.write(after)
        bus.notify_committed()
        # The relay may still be in its failure backoff (up to 10 s); wake does not cut that short.
        await wait_until(heard.heard(after), deadline_s=60, what="the event after the restart")
    finally:
        await bus.stop()
    print(f"reconnects={heard.reconnects} queue {queue_before} -> {listener.queue_name}")
    assert heard.reconnects >= 1
    assert listener.queue_name != queue_before, "the exclusive queue died with the old connection"
    assert heard.ids().count(after.event_id) == 1


def _unhealthy(bus):
    async def predicate() -> bool:
        return not await bus.healthy()

    return predicate
