"""`posgate dev`, as the README's run command starts it: every component SERVING in one process."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from posgate.clients.inventory import InventoryClient
from posgate.contracts import inventory, returns
from tests.e2e.processes import PosgateProcess, free_port, wait_serving

COMPONENTS = ("gateway", "inventory", "routing", "returns")


async def test_dev_serves_every_component_then_stops_cleanly(tmp_path: Path) -> None:
    ports = {name: free_port() for name in COMPONENTS}
    env = {f"POSGATE_{name.upper()}_PORT": str(port) for name, port in ports.items()}
    env["POSGATE_GATEWAY_HTTP_PORT"] = str(free_port())
    process = PosgateProcess(
        ["dev", "--database-url", f"sqlite+aiosqlite:///{tmp_path / 'dev.db'}"], env, tmp_path / "dev.log"
    )
    try:
        for name, port in ports.items():
            await wait_serving(process, port)
            assert f"posgate {name}: gRPC listening on 127.0.0.1:{port}" in process.output()

        # Dev mode: no credentials needed; stock moves through the embedded stack.
        client = InventoryClient.connect(f"127.0.0.1:{ports['inventory']}")
        movement = inventory.pb.Movement(
            idempotency_key="dev-1",
            key=inventory.pb.StockKey(tenant_id="t1", store_id="s1", sku="sku-1"),
            type=inventory.pb.MOVEMENT_TYPE_RECEIPT,
            delta=3,
        )
        assert (await client.apply_movements([movement]))[0].outcome == inventory.pb.MOVEMENT_OUTCOME_APPLIED
        assert (await client.get_stock("t1", "s1", "sku-1")).available == 3
        await client.close()

        async with grpc.aio.insecure_channel(f"127.0.0.1:{ports['returns']}") as channel:
            # Declared, not built yet: gRPC answers UNIMPLEMENTED.
            stub = returns.grpc_api.ReturnsServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await stub.GetReturn(returns.pb.GetReturnRequest())
            assert raised.value.code() is grpc.StatusCode.UNIMPLEMENTED

        with grpc.insecure_channel(f"127.0.0.1:{ports['routing']}") as channel:
            services = set(ProtoReflectionDescriptorDatabase(channel).get_services())
        assert {
            "posgate.routing.v1.RoutingService",
            "posgate.stores.v1.StoreService",
            "posgate.catalog.v1.CatalogService",
            "grpc.health.v1.Health",
        } <= services
    finally:
        code = process.terminate()
    assert code == 0, process.output()
    assert "shutdown complete" in process.output()
    assert (tmp_path / "dev.db").exists()
