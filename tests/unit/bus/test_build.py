"""`build_event_bus` picks the transport from settings without touching the network."""

from __future__ import annotations

import pytest
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from posgate.bus.consumer import RabbitSubscriptions
from posgate.bus.inprocess import InProcessBus
from posgate.bus.rabbit import RabbitSink
from posgate.bus.transport import build_event_bus
from posgate.settings import EventTransport, Settings


async def test_inprocess_and_rabbitmq_transports() -> None:
    engine = create_async_engine("sqlite+aiosqlite://")
    sessions = async_sessionmaker(engine)
    try:
        dev = build_event_bus(Settings(event_transport=EventTransport.INPROCESS), sessions)
        assert isinstance(dev.relay._sink, InProcessBus)
        assert await dev.healthy()

        prod = build_event_bus(
            Settings(event_transport=EventTransport.RABBITMQ, amqp_url=SecretStr("amqp://u:p@nowhere:1/")),
            sessions,
        )
        assert isinstance(prod.relay._sink, RabbitSink)
        assert isinstance(prod._subscriptions, RabbitSubscriptions)
        assert not await prod.healthy(), "not connected before start()"
    finally:
        await engine.dispose()


async def test_rabbitmq_consumers_and_listeners_must_register_before_start() -> None:
    engine = create_async_engine("sqlite+aiosqlite://")
    try:
        bus = build_event_bus(Settings(event_transport=EventTransport.RABBITMQ), async_sessionmaker(engine))
        await bus.start(run_relay=False)  # no consumers yet, so nothing connects
        with pytest.raises(RuntimeError, match="before the event bus is started"):
            bus.subscribe("late", ["inventory.*"], _noop)
        with pytest.raises(RuntimeError, match="before the event bus is started"):
            bus.listen(["inventory.*"], _ignore)
        await bus.stop()
    finally:
        await engine.dispose()


async def _noop(event, session) -> None:
    return None


async def _ignore(event) -> None:
    return None
