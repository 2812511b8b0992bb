"""A consumer killed between commit and ack gets the message again; the inbox stops a second effect."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path

import pytest

from posgate.bus.consumer import RabbitConsumer
from posgate.bus.rabbit import Broker, RabbitSink
from tests.integration.bus.conftest import Db, Rabbit, event, wait_until
from tests.integration.bus.effects import effect_rows, recording_handler

pytestmark = [pytest.mark.rabbitmq, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[3]


async def test_killed_consumer_gets_redelivery_and_the_inbox_prevents_a_second_effect(
    pg_db: Db, rabbit: Rabbit, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="posgate.bus")
    settings = rabbit.settings
    queue = await rabbit.probe_queue("crashy", ["inventory.*"])  # the consumer's own queue, declared early
    sent = event()
    broker = Broker(settings.amqp_url)
    try:
        await RabbitSink(broker, settings).publish([sent])
    finally:
        await broker.close()

    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.integration.bus.consumer_child",
        pg_db.engine.url.render_as_string(hide_password=False),
        str(settings.amqp_url.get_secret_value()),
        settings.events_exchange,
        settings.dead_letter_exchange,
        "crashy",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(child.communicate(), timeout=40)
    assert child.returncode == -signal.SIGKILL, (stdout, stderr)
    assert [(c, e) for c, e, _ in await effect_rows(pg_db.engine)] == [("crashy", sent.event_id)]

    async def back_in_queue() -> bool:
        declared = await queue.declare()  # passive re-declare reports the ready count
        return declared.message_count == 1

    await wait_until(back_in_queue, what="the unacked message to return to the queue")

    broker = Broker(settings.amqp_url)
    fresh = RabbitConsumer(
        "crashy", ["inventory.*"], recording_handler("crashy"), pg_db.sessions, settings, broker=broker
    )
    await fresh.start()
    try:

        async def redelivered() -> bool:
            return "already applied" in caplog.text

        await wait_until(redelivered, what="the fresh consumer to see the redelivery")
    finally:
        await fresh.stop()
        await broker.close()

    duplicate_logs = [r.getMessage() for r in caplog.records if "already applied" in r.getMessage()]
    assert duplicate_logs == [
        f"consumer crashy: event {sent.event_id} (attempt 2) was already applied; acking the duplicate"
    ]
    assert (await queue.declare()).message_count == 0, "the duplicate must be acked"
    assert [(c, e) for c, e, _ in await effect_rows(pg_db.engine)] == [("crashy", sent.event_id)]
