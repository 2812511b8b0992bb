"""The relay's own guarantees, checked with hand-written sinks on real databases."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from posgate.bus.ports import EventSink, OutgoingEvent
from posgate.bus.relay import OutboxRelay
from posgate.bus.retry import Backoff
from tests.integration.bus.conftest import Db, event, wait_until


class RecordingSink(EventSink):
    """Accepts everything, after an optional pause, and remembers what it saw."""

    def __init__(self, pause_s: float = 0.0) -> None:
        self.published: list[str] = []
        self._pause_s = pause_s

    async def publish(self, events: Sequence[OutgoingEvent]) -> None:
        await asyncio.sleep(self._pause_s)
        self.published.extend(e.event_id for e in events)


class FlakySink(RecordingSink):
    """Fails the first `failures` batches, as a broker outage would."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures_left = failures
        self.calls = 0

    async def publish(self, events: Sequence[OutgoingEvent]) -> None:
        self.calls += 1
        if self.failures_left:
            self.failures_left -= 1
            raise ConnectionError("amqp://guest:s3cret@broker:5672/ refused")
        await super().publish(events)


async def test_failed_publish_marks_nothing(db: Db) -> None:
    await db.write(event(n=1), event(n=2))
    relay = OutboxRelay(db.sessions, FlakySink(failures=1))
    try:
        await relay.publish_pending()
    except ConnectionError:
        pass
    else:
        raise AssertionError("the sink failure must surface")
    assert await db.unpublished() == 2


async def test_run_backs_off_and_retries_until_the_sink_recovers(db: Db, caplog) -> None:
    written = [event(n=n) for n in range(5)]
    await db.write(*written)
    sink = FlakySink(failures=3)
    relay = OutboxRelay(db.sessions, sink, poll_interval=0.01, backoff=Backoff(base_s=0.01, cap_s=0.05))
    task = asyncio.create_task(relay.run())
    try:
        await wait_until(lambda: _no_pending(db), what="the relay to publish after the sink recovers")
    finally:
        relay.stop()
        await task
    assert sink.calls >= 4
    assert sink.published == [e.event_id for e in written]
    assert "s3cret" not in caplog.text
    assert "relay failed" in caplog.text


async def _no_pending(db: Db) -> bool:
    return await db.unpublished() == 0


async def test_concurrent_relays_never_publish_a_row_twice(pg_db: Db) -> None:
    written = [event(n=n) for n in range(200)]
    await pg_db.write(*written)
    sinks = [RecordingSink(pause_s=0.02) for _ in range(3)]
    relays = [OutboxRelay(pg_db.sessions, sink, batch_size=20) for sink in sinks]

    async def drain_outbox(relay: OutboxRelay) -> None:
        while await relay.publish_pending():
            pass

    await asyncio.gather(*(drain_outbox(relay) for relay in relays))

    published = [event_id for sink in sinks for event_id in sink.published]
    assert sorted(published) == sorted(e.event_id for e in written)
    assert sum(1 for sink in sinks if sink.published) > 1, "SKIP LOCKED should let relays share the work"
    assert await pg_db.unpublished() == 0
