"""`posgate migrate` and `posgate serve <component>` with production settings.

PostgreSQL and RabbitMQ are real; callers must authenticate.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import grpc
import pytest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from posgate.contracts import inventory
from tests.e2e.processes import POSGATE, PosgateProcess, free_port, wait_serving

TOKEN = "e2e-caller-token-0123456789"


def production_env(database_url: str, port: int, unique: str) -> dict[str, str]:
    return {
        "POSGATE_DATABASE_URL": database_url,
        "POSGATE_EVENT_TRANSPORT": "rabbitmq",
        "POSGATE_EVENTS_EXCHANGE": f"posgate.events.e2e.{unique}",
        "POSGATE_DEAD_LETTER_EXCHANGE": f"posgate.dlx.e2e.{unique}",
        "POSGATE_INVENTORY_PORT": str(port),
        "POSGATE_AUTH_TOKENS": TOKEN,
        "POSGATE_HEALTH_PROBE_INTERVAL_S": "0.2",
    }


async def _list_services(port: int, metadata: tuple[tuple[str, str], ...]) -> grpc.StatusCode | set[str]:
    """Reflection's service list (a real, served RPC), or the status code it failed with."""
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        try:
            async for response in stub.ServerReflectionInfo(iter([request]), metadata=metadata, timeout=5):
                return {service.name for service in response.list_services_response.service}
        except grpc.aio.AioRpcError as error:
            return error.code()
    raise AssertionError("reflection answered nothing")


async def _reflection_refused_with(port: int, metadata: tuple[tuple[str, str], ...]) -> grpc.StatusCode:
    """The status a reflection call ends with when it sends no request (the server refuses it first).

    Nothing is written: a request written while the server refuses the call races grpc.aio's
    client, which then reports INTERNAL instead of the server's status (grpc/grpc#36066). A
    call the server does not refuse waits for a request and ends DEADLINE_EXCEEDED.
    """
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        return await stub.ServerReflectionInfo(metadata=metadata, timeout=5).code()


async def _first_watch_update(port: int, metadata: tuple[tuple[str, str], ...]) -> grpc.StatusCode | str:
    """What the stream edge's WatchStock sends first: the kind of update, or the status it failed with."""
    request = inventory.pb.WatchStockRequest(tenant_id="e2e", store_ids=["s1"])
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = inventory.grpc_api.InventoryServiceStub(channel).WatchStock(
            request, metadata=metadata, timeout=5
        )
        try:
            async for update in call:
                return str(update.WhichOneof("update"))
        except grpc.aio.AioRpcError as error:
            return error.code()
    raise AssertionError("the stream edge answered nothing")


@pytest.mark.postgres
@pytest.mark.rabbitmq
async def test_serve_inventory_requires_credentials(
    postgres_url: str, amqp_url: str, unique_name: str, tmp_path: Path
) -> None:
    port = free_port()
    env = production_env(postgres_url, port, unique_name)
    migrated = subprocess.run(
        [*POSGATE, "migrate"], check=False, env=env, capture_output=True, text=True, timeout=60
    )
    assert migrated.returncode == 0, migrated.stderr

    stream_port = free_port()
    env["POSGATE_INVENTORY_STREAM_PORT"] = str(stream_port)
    process = PosgateProcess(["serve", "inventory"], env, tmp_path / "inventory.log")
    try:
        await wait_serving(process, port)
        assert await _reflection_refused_with(port, ()) is grpc.StatusCode.UNAUTHENTICATED
        wrong = (("authorization", "Bearer wrong"),)
        assert await _reflection_refused_with(port, wrong) is grpc.StatusCode.UNAUTHENTICATED
        services = await _list_services(port, (("authorization", f"Bearer {TOKEN}"),))
        assert isinstance(services, set)
        assert inventory.SERVICE_NAME in services
        assert await _first_watch_update(stream_port, ()) is grpc.StatusCode.UNAUTHENTICATED
        assert await _first_watch_update(stream_port, (("authorization", f"Bearer {TOKEN}"),)) == "snapshot"
    finally:
        code = process.terminate()
    assert code == 0, process.output()
    assert TOKEN not in process.output()
    assert "guest:guest" not in process.output()


def test_serve_refuses_to_start_without_caller_credentials(tmp_path: Path) -> None:
    env = {
        "POSGATE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'x.db'}",
        "POSGATE_INVENTORY_PORT": str(free_port()),
    }
    command = [*POSGATE, "serve", "inventory"]
    result = subprocess.run(command, check=False, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "token" in result.stderr.lower() or "mtls" in result.stderr.lower()


def test_serve_reports_an_unreachable_broker_without_its_password(tmp_path: Path) -> None:
    env = {
        "POSGATE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'x.db'}",
        "POSGATE_INVENTORY_PORT": str(free_port()),
        "POSGATE_AUTH_TOKENS": TOKEN,
        "POSGATE_EVENT_TRANSPORT": "rabbitmq",
        "POSGATE_AMQP_URL": f"amqp://svc:broker-pass-123@127.0.0.1:{free_port()}/",
    }
    command = [*POSGATE, "serve", "inventory"]
    result = subprocess.run(command, check=False, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "cannot reach the message broker" in result.stderr
    assert "broker-pass-123" not in result.stderr + result.stdout
