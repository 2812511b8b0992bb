"""Fixtures for runtime tests: settings, a server factory that always stops what it started."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pydantic import SecretStr

from posgate.runtime.health import DependencyProbe
from posgate.runtime.server import ComponentSpec, RunningServer, start_server
from posgate.settings import Settings
from tests.integration.runtime.echo_service import SERVICE_NAME, EchoServicer, add_EchoServicer_to_server

TOKEN_ONE = "token-one-3f9c2a"
TOKEN_TWO = "token-two-7b1d4e"

Serve = Callable[..., Awaitable[RunningServer]]


def make_settings(**overrides: Any) -> Settings:
    """Test settings: auth on with two tokens, fast health probes, loopback only."""
    values: dict[str, Any] = {
        "dev_mode": False,
        "grpc_host": "127.0.0.1",
        "auth_tokens": [SecretStr(TOKEN_ONE), SecretStr(TOKEN_TWO)],
        "health_probe_interval_s": 0.1,
        "tls_cert_file": None,
        "tls_key_file": None,
        "tls_client_ca_file": None,
    }
    values.update(overrides)
    return Settings(**values)


def echo_spec(
    servicer: EchoServicer | None = None, probes: tuple[DependencyProbe, ...] = ()
) -> ComponentSpec:
    """A component serving only the echo service."""
    return ComponentSpec(
        name="echo",
        registrations=[(add_EchoServicer_to_server, servicer or EchoServicer())],
        service_names=[SERVICE_NAME],
        probes=probes,
    )


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Start servers with `await serve(spec, settings)`; all are stopped after the test."""
    started: list[RunningServer] = []

    async def _serve(spec: ComponentSpec, settings: Settings) -> RunningServer:
        running = await start_server(spec, settings, port=0)
        started.append(running)
        return running

    yield _serve
    await asyncio.gather(*(running.stop(None) for running in started))


@pytest.fixture
async def channel_to() -> AsyncIterator[Callable[[RunningServer], grpc.aio.Channel]]:
    """Open plaintext channels to running servers; all are closed after the test."""
    channels: list[grpc.aio.Channel] = []

    def _open(running: RunningServer) -> grpc.aio.Channel:
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{running.port}")
        channels.append(channel)
        return channel

    yield _open
    for channel in channels:
        await channel.close()


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    """Call metadata carrying a bearer token."""
    return (("authorization", f"Bearer {token}"),)


async def health_status(channel: grpc.aio.Channel, service: str = "") -> int:
    """The health `Check` status of `service` (no credentials, as a Kubernetes probe calls it)."""
    stub = health_pb2_grpc.HealthStub(channel)
    response = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
    return int(response.status)


async def wait_for_status(channel: grpc.aio.Channel, wanted: int, service: str = "") -> None:
    """Poll `Check` until it reports `wanted`; the 30 s bound only keeps a broken run from hanging."""
    async with asyncio.timeout(30):
        # Polling on purpose: this is what a load balancer or Kubernetes does.
        while True:
            if await health_status(channel, service) == wanted:
                return
            await asyncio.sleep(0.05)
