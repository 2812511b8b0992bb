"""A consumer process that dies (SIGKILL) after its commit and before its ack.

Usage: python -m tests.integration.bus.consumer_child DB_URL AMQP_URL EVENTS_EXCHANGE DLX CONSUMER
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy import event as orm_event
from sqlalchemy.ext.asyncio import AsyncSession

from posgate.bus.consumer import RabbitConsumer
from posgate.bus.ports import IncomingEvent
from posgate.bus.rabbit import Broker
from posgate.db.engine import create_engine, session_factory
from posgate.settings import Settings
from tests.integration.bus.effects import effects


def _die(_session: object) -> None:
    # after_commit runs once the database has committed, and before the consumer acks.
    os.kill(os.getpid(), signal.SIGKILL)


async def main(db_url: str, amqp_url: str, exchange: str, dlx: str, consumer: str) -> int:
    settings = Settings(amqp_url=SecretStr(amqp_url), events_exchange=exchange, dead_letter_exchange=dlx)

    async def handle(incoming: IncomingEvent, session: AsyncSession) -> None:
        await session.execute(
            sa.insert(effects).values(consumer=consumer, event_id=incoming.event_id, attempt=incoming.attempt)
        )
        orm_event.listen(session.sync_session, "after_commit", _die)

    engine = create_engine(db_url)
    broker = Broker(settings.amqp_url)
    worker = RabbitConsumer(
        consumer, ["inventory.*"], handle, session_factory(engine), settings, broker=broker
    )
    await worker.start()
    print("consuming", flush=True)
    await asyncio.sleep(30)  # the handler kills us long before this
    return 3


if __name__ == "__main__":
    sys.exit(asyncio.run(main(*sys.argv[1:6])))
