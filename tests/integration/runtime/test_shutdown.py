"""Graceful shutdown: in-flight RPCs finish, health turns NOT_SERVING, signals stop the process."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import grpc
import pytest
from google.protobuf.wrappers_pb2 import StringValue
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.integration.runtime.conftest import TOKEN_ONE, bearer, echo_spec, make_settings
from tests.integration.runtime.echo_service import EchoClient, EchoServicer

REPO_ROOT = Path(__file__).resolve().parents[3]


async def test_an_in_flight_call_completes_during_a_graceful_stop(serve, channel_to):
    servicer = EchoServicer()
    running = await serve(echo_spec(servicer), make_settings())
    client = EchoClient(channel_to(running))
    slow_call = asyncio.ensure_future(client.say(StringValue(value="slow:0.5"), metadata=bearer(TOKEN_ONE)))
    await asyncio.wait_for(servicer.slow_call_started.wait(), 10)

    await running.stop(grace=10)

    assert (await slow_call).value == "done"
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await client.say(StringValue(value="after"), metadata=bearer(TOKEN_ONE), timeout=5)
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_health_turns_not_serving_when_the_stop_begins(serve, channel_to):
    running = await serve(echo_spec(), make_settings())
    watch = health_pb2_grpc.HealthStub(channel_to(running)).Watch(health_pb2.HealthCheckRequest(service=""))
    assert (await watch.read()).status == health_pb2.HealthCheckResponse.SERVING

    stopping = asyncio.create_task(running.stop(grace=0.5))
    assert (await asyncio.wait_for(watch.read(), 10)).status == health_pb2.HealthCheckResponse.NOT_SERVING
    await stopping


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_the_process_stops_cleanly_on_a_signal(signum):
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.integration.runtime.serve_until_signalled", "5",
        cwd=REPO_ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        ready = await asyncio.wait_for(process.stdout.readline(), 30)
        assert ready.startswith(b"READY "), ready
        port = int(ready.split()[1])
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            assert (await EchoClient(channel).say(StringValue(value="up"), timeout=10)).value == "up"

        process.send_signal(signum)
        # The bound only keeps a broken run from hanging; it is not a performance assertion.
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    log = stderr.decode()
    assert process.returncode == 0, log
    assert f"shutdown requested signal={signum.name}" in log
    assert "server stopped component=echo" in log
    assert "shutdown complete" in log
