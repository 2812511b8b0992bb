"""Two `posgate serve inventory` processes on one database: a change made through one
reaches a WatchStock stream held by the other, through RabbitMQ."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from posgate.clients.inventory import InventoryClient
from posgate.contracts import inventory
from tests.e2e.processes import POSGATE, PosgateProcess, free_port, wait_serving

pb = inventory.pb
TOKEN = "replica-test-token-0123456789"


@pytest.mark.postgres
@pytest.mark.rabbitmq
async def test_a_change_on_one_replica_reaches_a_stream_on_the_other(
    postgres_url: str, amqp_url: str, unique_name: str, tmp_path: Path
) -> None:
    ports = [free_port(), free_port()]
    base = {
        "POSGATE_DATABASE_URL": postgres_url,
        "POSGATE_EVENT_TRANSPORT": "rabbitmq",
        "POSGATE_AMQP_URL": amqp_url,
        "POSGATE_EVENTS_EXCHANGE": f"posgate.events.replicas.{unique_name}",
        "POSGATE_DEAD_LETTER_EXCHANGE": f"posgate.dlx.replicas.{unique_name}",
        "POSGATE_AUTH_TOKENS": TOKEN,
    }
    assert subprocess.run([*POSGATE, "migrate"], check=False, env=base, capture_output=True).returncode == 0
    edge_ports = [free_port(), free_port()]  # both serve WatchStock on a stream edge too
    replicas = [
        PosgateProcess(
            ["serve", "inventory"],
            {
                **base,
                "POSGATE_INVENTORY_PORT": str(port),
                "POSGATE_INVENTORY_STREAM_PORT": str(edge_ports[i]),
            },
            tmp_path / f"r{i}.log",
        )
        for i, port in enumerate(ports)
    ]
    writer = InventoryClient.connect(f"127.0.0.1:{ports[0]}", token=TOKEN)
    watcher = InventoryClient.connect(f"127.0.0.1:{ports[1]}", token=TOKEN)
    edge_watcher = InventoryClient.connect(
        f"127.0.0.1:{ports[1]}", token=TOKEN, stream_target=f"127.0.0.1:{edge_ports[1]}"
    )
    try:
        for replica, port in zip(replicas, ports, strict=True):
            await wait_serving(replica, port)
        stream = watcher.watch_stock("t1", store_ids=["s1"]).__aiter__()
        edge_stream = edge_watcher.watch_stock("t1", store_ids=["s1"]).__aiter__()
        for opened in (stream, edge_stream):
            first = await asyncio.wait_for(opened.__anext__(), 10)
            assert first.HasField("snapshot") and first.snapshot.complete

        movement = pb.Movement(
            idempotency_key="via-replica-a",
            key=pb.StockKey(tenant_id="t1", store_id="s1", sku="sku-1"),
            type=pb.MOVEMENT_TYPE_RECEIPT,
            delta=4,
        )
        results = await writer.apply_movements([movement])
        assert results[0].outcome == pb.MOVEMENT_OUTCOME_APPLIED

        for opened in (stream, edge_stream):
            update = await asyncio.wait_for(opened.__anext__(), 15)
            assert update.HasField("change")
            assert (update.change.level.key.sku, update.change.level.on_hand, update.change.delta) == (
                "sku-1",
                4,
                4,
            )
            assert update.change.level.sequence == results[0].level.sequence
    finally:
        await writer.close()
        await watcher.close()
        await edge_watcher.close()
        for replica in replicas:
            assert replica.terminate() == 0, replica.output()
