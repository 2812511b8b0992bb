"""SIGKILL the inventory service in the middle of batches: nothing acknowledged is lost,
nothing is applied twice once the callers retry after the restart."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from pathlib import Path

import grpc
import pytest
from sqlalchemy import func, select

from posgate.clients.inventory import InventoryClient
from posgate.contracts import inventory
from posgate.db.engine import create_engine, session_factory
from posgate.services.inventory.tables import movements, stock
from tests.e2e.processes import POSGATE, PosgateProcess, free_port, wait_serving

pb = inventory.pb
TOKEN = "crash-test-token-0123456789"
BATCHES = 120
PER_BATCH = 50


def batch(number: int) -> list[inventory.pb.Movement]:
    return [
        pb.Movement(
            idempotency_key=f"b{number}-m{i}",
            key=pb.StockKey(tenant_id="t1", store_id=f"s{i % 3}", sku=f"sku-{(number + i) % 7}"),
            type=pb.MOVEMENT_TYPE_RECEIPT,
            delta=1 + (number * PER_BATCH + i) % 5,
        )
        for i in range(PER_BATCH)
    ]


def expected_totals() -> dict[tuple[str, str], int]:
    totals: dict[tuple[str, str], int] = {}
    for number in range(BATCHES):
        for m in batch(number):
            position = (m.key.store_id, m.key.sku)
            totals[position] = totals.get(position, 0) + m.delta
    return totals


async def send_until_killed(port: int, acked: set[int], process: PosgateProcess) -> None:
    """Four senders push batches; the server is SIGKILLed once a third have been acknowledged."""
    client = InventoryClient.connect(f"127.0.0.1:{port}", token=TOKEN)
    pending = list(range(BATCHES))

    async def sender() -> None:
        while pending:
            number = pending.pop(0)
            try:
                results = await client.apply_movements(batch(number))
            except grpc.aio.AioRpcError:
                return
            assert all(r.outcome == pb.MOVEMENT_OUTCOME_APPLIED for r in results)
            acked.add(number)
            if len(acked) == BATCHES // 3:
                os.kill(process.process.pid, signal.SIGKILL)

    await asyncio.gather(*(sender() for _ in range(4)))
    await client.close()


@pytest.mark.postgres
@pytest.mark.slow
async def test_sigkill_mid_batch_loses_nothing_acknowledged(postgres_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = {
        "POSGATE_DATABASE_URL": postgres_url,
        "POSGATE_INVENTORY_PORT": str(port),
        "POSGATE_AUTH_TOKENS": TOKEN,
    }
    assert subprocess.run([*POSGATE, "migrate"], check=False, env=env, capture_output=True).returncode == 0
    first = PosgateProcess(["serve", "inventory"], env, tmp_path / "first.log")
    await wait_serving(first, port)
    acked: set[int] = set()
    await send_until_killed(port, acked, first)
    assert first.process.wait(timeout=10) == -signal.SIGKILL
    assert BATCHES // 3 <= len(acked) < BATCHES

    second = PosgateProcess(["serve", "inventory"], env, tmp_path / "second.log")
    try:
        await wait_serving(second, port)
        client = InventoryClient.connect(f"127.0.0.1:{port}", token=TOKEN)
        # The callers retry everything: what was acknowledged comes back as duplicates.
        outcomes: dict[int, set[int]] = {}
        for number in range(BATCHES):
            results = await client.apply_movements(batch(number))
            outcomes[number] = {r.outcome for r in results}
        await client.close()
    finally:
        assert second.terminate() == 0, second.output()
    for number in acked:
        assert outcomes[number] == {pb.MOVEMENT_OUTCOME_DUPLICATE}, number

    engine = create_engine(postgres_url)
    async with session_factory(engine)() as session:
        rows = await session.execute(select(stock.c.store_id, stock.c.sku, stock.c.on_hand))
        actual = {(r.store_id, r.sku): r.on_hand for r in rows}
        ledger_rows = (await session.execute(select(func.count()).select_from(movements))).scalar_one()
    await engine.dispose()
    assert actual == expected_totals()
    assert ledger_rows == BATCHES * PER_BATCH
