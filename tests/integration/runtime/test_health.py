"""Health follows the component's dependencies: a real PostgreSQL behind a cuttable proxy."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy.engine import make_url

from posgate.db.engine import create_engine
from posgate.runtime.health import broker_probe, database_probe
from tests.conftest import PG_HOST, PG_PORT
from tests.integration.runtime.conftest import echo_spec, health_status, make_settings, wait_for_status
from tests.integration.runtime.echo_service import SERVICE_NAME
from tests.integration.runtime.tcp_proxy import TcpProxy

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@pytest.mark.postgres
async def test_health_is_not_serving_while_the_database_is_unreachable(postgres_url, serve, channel_to):
    proxy = TcpProxy(PG_HOST, PG_PORT)
    await proxy.start()
    engine = create_engine(
        make_url(postgres_url).set(host="127.0.0.1", port=proxy.port).render_as_string(False)
    )
    try:
        running = await serve(echo_spec(probes=(database_probe(engine, timeout_s=2.0),)), make_settings())
        channel = channel_to(running)
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=SERVICE_NAME))
        assert (await watch.read()).status == SERVING
        assert await health_status(channel) == SERVING

        await proxy.cut()
        await wait_for_status(channel, NOT_SERVING)
        await wait_for_status(channel, NOT_SERVING, SERVICE_NAME)
        async with asyncio.timeout(30):
            assert (await watch.read()).status == NOT_SERVING

        await proxy.restore()
        await wait_for_status(channel, SERVING)
        await wait_for_status(channel, SERVING, SERVICE_NAME)
        async with asyncio.timeout(30):
            assert (await watch.read()).status == SERVING
        watch.cancel()
    finally:
        await engine.dispose()
        await proxy.close()


async def test_a_broker_probe_reporting_false_makes_the_server_not_serving(serve, channel_to):
    connected = True

    async def broker_connected() -> bool:
        return connected

    running = await serve(echo_spec(probes=(broker_probe(broker_connected),)), make_settings())
    channel = channel_to(running)
    await wait_for_status(channel, SERVING)
    connected = False
    await wait_for_status(channel, NOT_SERVING, SERVICE_NAME)
    connected = True
    await wait_for_status(channel, SERVING, SERVICE_NAME)


async def test_unknown_service_names_are_not_found(serve, channel_to):
    running = await serve(echo_spec(), make_settings())
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await health_status(channel_to(running), "posgate.nothing.v1.Nothing")
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
