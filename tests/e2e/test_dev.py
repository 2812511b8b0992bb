"""`posgate dev`, as the README's run command starts it: every component SERVING in one process."""

from __future__ import annotations

from pathlib import Path

import grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from posgate.contracts import inventory
from tests.e2e.processes import PosgateProcess, free_port, wait_serving

COMPONENTS = ("gateway", "inventory", "routing", "returns")


async def test_dev_serves_every_component_then_stops_cleanly(tmp_path: Path) -> None:
    ports = {name: free_port() for name in COMPONENTS}
    env = {f"POSGATE_{name.upper()}_PORT": str(port) for name, port in ports.items()}
    process = PosgateProcess(
        ["dev", "--database-url", f"sqlite+aiosqlite:///{tmp_path / 'dev.db'}"], env, tmp_path / "dev.log"
    )
    try:
        for name, port in ports.items():
            await wait_serving(process, port)
            assert f"posgate {name}: gRPC listening on 127.0.0.1:{port}" in process.output()

        async with grpc.aio.insecure_channel(f"127.0.0.1:{ports['inventory']}") as channel:
            # Dev mode: no credentials needed; the declared RPC is not built yet.
            call = inventory.grpc_api.InventoryServiceStub(channel).GetStock(inventory.pb.GetStockRequest())
            try:
                await call
                raise AssertionError("GetStock should not be served yet")
            except grpc.aio.AioRpcError as error:
                assert error.code() is grpc.StatusCode.UNIMPLEMENTED

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
