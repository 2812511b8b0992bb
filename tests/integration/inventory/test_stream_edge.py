"""The stream edge: WatchStock and the unary methods for a grpc.aio client, unchanged, on the edge's port."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from posgate.clients.inventory import InventoryClient
from posgate.contracts import inventory
from tests.integration.inventory.conftest import (
    INTERNAL_TOKEN,
    SCOPED_SECRET,
    InventoryServer,
    start_inventory,
)
from tests.integration.inventory.test_service_streams import receipt
from tests.integration.runtime.certificates import make_certificates

pb = inventory.pb
T, S = "t1", "s1"


@pytest.fixture
async def edge_server(database_url: str) -> AsyncIterator[InventoryServer]:
    """The inventory service with its stream edge on a free port, on SQLite and PostgreSQL."""
    async for server in start_inventory(database_url, inventory_stream_port=0):
        assert server.stream_port > 0
        yield server


@pytest.fixture
async def edge_client(edge_server: InventoryServer) -> AsyncIterator[InventoryClient]:
    client = InventoryClient.connect(
        f"127.0.0.1:{edge_server.port}",
        token=INTERNAL_TOKEN,
        stream_target=f"127.0.0.1:{edge_server.stream_port}",
    )
    yield client
    await client.close()


async def until_live(stream: AsyncIterator[inventory.pb.WatchStockResponse]) -> list[inventory.pb.StockLevel]:
    levels: list[inventory.pb.StockLevel] = []
    while True:
        update = await asyncio.wait_for(anext(stream), 10)
        levels.extend(update.snapshot.levels)
        if update.snapshot.complete:
            return levels


async def test_a_snapshot_then_every_change_in_sequence(edge_client: InventoryClient) -> None:
    await edge_client.apply_movements([receipt("seed", 5)])
    stream = edge_client.watch_stock(T, store_ids=[S])
    levels = await until_live(stream)
    assert [(level.key.sku, level.on_hand) for level in levels] == [("sku-1", 5)]

    for number in range(20):
        await edge_client.apply_movements([receipt(f"live-{number}", sku=f"sku-{number % 3}")])
    changes = [(await asyncio.wait_for(anext(stream), 10)).change for _ in range(20)]
    assert [c.level.sequence for c in changes] == list(range(2, 22))
    assert [c.delta for c in changes] == [1] * 20
    await stream.aclose()


async def test_a_resumed_stream_gets_exactly_what_it_missed(edge_client: InventoryClient) -> None:
    await edge_client.apply_movements([receipt("first")])
    stream = edge_client.watch_stock(T, store_ids=[S])
    await until_live(stream)
    await stream.aclose()
    await edge_client.apply_movements([receipt(f"missed-{n}", sku=f"sku-{n}") for n in range(50)])

    resumed = edge_client.watch_stock(T, store_ids=[S], resume_after={S: 1})
    sequences = []
    while len(sequences) < 50:
        update = await asyncio.wait_for(anext(resumed), 10)
        if update.HasField("change"):
            sequences.append(update.change.level.sequence)
    assert sequences == list(range(2, 52))
    await resumed.aclose()


async def test_a_snapshot_larger_than_one_http2_frame_arrives_whole(edge_client: InventoryClient) -> None:
    await edge_client.apply_movements(
        [receipt(f"wide-{n}", sku=f"sku-{n:04d}-{'x' * 40}") for n in range(600)]
    )
    stream = edge_client.watch_stock(T, store_ids=[S])
    levels = await until_live(stream)
    assert len(levels) == 600
    assert {level.on_hand for level in levels} == {1}
    await stream.aclose()


def error_reason(error: grpc.aio.AioRpcError) -> str:
    status = rpc_status.from_call(error)
    assert status is not None, "the error carries rich details"
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    return info.reason


async def first_error(client: InventoryClient, tenant: str) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await anext(client.watch_stock(tenant, store_ids=[S]))
    return raised.value


async def test_callers_are_authenticated_and_scoped_as_on_the_grpc_port(edge_server: InventoryServer) -> None:
    target, edge = f"127.0.0.1:{edge_server.port}", f"127.0.0.1:{edge_server.stream_port}"
    anonymous = InventoryClient.connect(target, stream_target=edge)
    scoped = InventoryClient.connect(target, token=SCOPED_SECRET, stream_target=edge)
    try:
        refused = await first_error(anonymous, T)
        assert refused.code() == grpc.StatusCode.UNAUTHENTICATED
        assert error_reason(refused) == "CREDENTIALS_MISSING"
        assert refused.trailing_metadata() is not None
        assert any(key == "x-correlation-id" for key, _ in refused.trailing_metadata())

        other_tenant = await first_error(scoped, "t2")
        assert other_tenant.code() == grpc.StatusCode.PERMISSION_DENIED

        no_tenant = await first_error(scoped, "")
        assert no_tenant.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error_reason(no_tenant) == "MISSING_TENANT"

        own = scoped.watch_stock(T, store_ids=[S])
        assert await until_live(own) == []
        await own.aclose()
    finally:
        await anonymous.close()
        await scoped.close()


async def test_unary_calls_are_served_and_logged_on_the_edge(
    edge_server: InventoryServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="posgate.rpc")
    only_edge = InventoryClient.connect(f"127.0.0.1:{edge_server.stream_port}", token=INTERNAL_TOKEN)
    try:
        # Larger than a stream's request limit (64 KiB): a unary call takes what the gRPC port takes.
        wide = [receipt(f"wide-{n}", sku=f"sku-{n:04d}-{'x' * 60}") for n in range(1500)]
        assert len(pb.ApplyMovementsRequest(movements=wide).SerializeToString()) > 64 * 1024
        results = await only_edge.apply_movements(wide)
        assert {r.outcome for r in results} == {pb.MOVEMENT_OUTCOME_APPLIED}
        again = await only_edge.apply_movements(wide[:1])
        assert again[0].outcome == pb.MOVEMENT_OUTCOME_DUPLICATE
        # What the edge applied, the gRPC port reads.
        level = await edge_server.client.get_stock(T, S, wide[0].key.sku)
        assert (level.on_hand, level.sequence) == (1, 1)
        assert len(await edge_server.client.batch_get_stock(T, [S])) == 1500
    finally:
        await only_edge.close()
    lines = [r.getMessage() for r in caplog.records if "/ApplyMovements code=OK" in r.getMessage()]
    assert len(lines) == 2
    assert all("caller=token#1" in line and "peer=ipv4:127.0.0.1:" in line for line in lines)


async def test_a_method_the_service_lacks_is_unimplemented_on_the_edge(edge_server: InventoryServer) -> None:
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{edge_server.stream_port}")
    missing = channel.unary_unary("/posgate.inventory.v1.InventoryService/Nothing")
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await missing(b"", metadata=(("authorization", f"Bearer {INTERNAL_TOKEN}"),), timeout=10)
    assert raised.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert error_reason(raised.value) == "METHOD_NOT_SERVED"
    await channel.close()


async def test_a_cancelled_stream_ends_alone_and_is_logged(
    edge_client: InventoryClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="posgate.rpc")
    leaving, staying = edge_client.watch_stock(T, store_ids=[S]), edge_client.watch_stock(T, store_ids=[S])
    await until_live(leaving)
    await until_live(staying)
    await leaving.aclose()
    await edge_client.apply_movements([receipt("after-cancel")])
    assert (await asyncio.wait_for(anext(staying), 10)).change.level.sequence == 1
    await staying.aclose()
    for _ in range(100):
        lines = [r.getMessage() for r in caplog.records if "WatchStock code=CANCELLED" in r.getMessage()]
        if len(lines) == 2:
            break
        await asyncio.sleep(0.05)
    assert len(lines) == 2
    assert all("caller=token#1" in line and "peer=ipv4:127.0.0.1:" in line for line in lines)


async def test_the_client_deadline_ends_the_stream(
    edge_client: InventoryClient, edge_server: InventoryServer
) -> None:
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{edge_server.stream_port}")
    stub = inventory.grpc_api.InventoryServiceStub(channel)
    call = stub.WatchStock(
        pb.WatchStockRequest(tenant_id=T, store_ids=[S]),
        metadata=(("authorization", f"Bearer {INTERNAL_TOKEN}"),),
        timeout=0.5,
    )
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        async for _update in call:
            pass
    assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    await channel.close()


async def test_shutdown_ends_streams_unavailable_so_clients_resume_elsewhere(sqlite_url: str) -> None:
    servers = start_inventory(sqlite_url, inventory_stream_port=0)
    server = await anext(servers)
    client = InventoryClient.connect(
        f"127.0.0.1:{server.port}", token=INTERNAL_TOKEN, stream_target=f"127.0.0.1:{server.stream_port}"
    )
    stream = client.watch_stock(T, store_ids=[S])
    await until_live(stream)
    stopping = asyncio.create_task(anext(servers, None))
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await asyncio.wait_for(anext(stream), 10)
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    assert error_reason(raised.value) == "STREAM_CLOSED"
    await stopping
    await client.close()


async def test_mutual_tls_on_the_edge(sqlite_url: str, tmp_path: Path) -> None:
    certificates = make_certificates(tmp_path)
    tls = {
        "tls_cert_file": str(certificates.server_cert),
        "tls_key_file": str(certificates.server_key),
        "tls_client_ca_file": str(certificates.ca),
    }
    async for server in start_inventory(sqlite_url, inventory_stream_port=0, auth_tokens=[], **tls):
        credentials = grpc.ssl_channel_credentials(
            root_certificates=certificates.ca.read_bytes(),
            private_key=certificates.client_key.read_bytes(),
            certificate_chain=certificates.client_cert.read_bytes(),
        )
        channel = grpc.aio.secure_channel(f"localhost:{server.stream_port}", credentials)
        stub = inventory.grpc_api.InventoryServiceStub(channel)
        call = stub.WatchStock(pb.WatchStockRequest(tenant_id=T, store_ids=[S]))
        first = await asyncio.wait_for(anext(aiter(call)), 10)
        assert first.snapshot.complete
        call.cancel()
        await channel.close()
