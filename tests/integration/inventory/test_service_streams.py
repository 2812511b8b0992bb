"""WatchStock and Reserve through gRPC, as kiosk backends and order routing use them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from posgate.contracts import events, inventory
from posgate.db.tables import outbox
from tests.integration.inventory.conftest import InventoryServer, start_inventory

pb = inventory.pb
T, S = "t1", "s1"


def receipt(key: str, delta: int = 1, sku: str = "sku-1") -> inventory.pb.Movement:
    return pb.Movement(
        idempotency_key=key,
        key=pb.StockKey(tenant_id=T, store_id=S, sku=sku),
        type=pb.MOVEMENT_TYPE_RECEIPT,
        delta=delta,
    )


@pytest.fixture
async def postgres_inventory(postgres_url: str) -> AsyncIterator[InventoryServer]:
    async for server in start_inventory(postgres_url):
        yield server


async def test_a_client_back_after_a_burst_gets_exactly_what_it_missed(
    inventory_server: InventoryServer,
) -> None:
    client = inventory_server.client
    await client.apply_movements([receipt("before")])
    stream = client.watch_stock(T, store_ids=[S])
    snapshot = (await asyncio.wait_for(anext(stream), 10)).snapshot
    assert snapshot.complete and snapshot.store_sequences[S] == 1
    await stream.aclose()  # the kiosk backend goes away

    for start in range(0, 1000, 100):
        await client.apply_movements(
            [receipt(f"burst-{i}", sku=f"sku-{i % 7}") for i in range(start, start + 100)]
        )

    resumed = client.watch_stock(T, store_ids=[S], resume_after={S: snapshot.store_sequences[S]})
    sequences: list[int] = []
    markers = []
    while True:
        update = await asyncio.wait_for(anext(resumed), 10)
        if update.HasField("snapshot"):
            # No snapshot of the resumed store, only the marker that the stream is live.
            assert not update.snapshot.levels
            markers.append(update.snapshot)
            if update.snapshot.complete:
                break
        else:
            sequences.append(update.change.level.sequence)
    assert sequences == list(range(2, 1002))
    assert markers[-1].store_sequences.get(S, 1001) == 1001
    await client.apply_movements([receipt("after")])
    live = await asyncio.wait_for(anext(resumed), 10)
    assert live.change.level.sequence == 1002
    await resumed.aclose()


@pytest.mark.postgres
async def test_200_concurrent_reserves_for_the_last_10_units(postgres_inventory: InventoryServer) -> None:
    client = postgres_inventory.client
    await client.apply_movements([receipt("stock", 10)])
    answers = await asyncio.gather(
        *(client.reserve(T, S, {"sku-1": 1}, idempotency_key=f"order-{i}") for i in range(200))
    )
    reserved = [a for a in answers if a.outcome == pb.RESERVE_OUTCOME_RESERVED]
    short = [a for a in answers if a.outcome == pb.RESERVE_OUTCOME_INSUFFICIENT_STOCK]
    assert (len(reserved), len(short)) == (10, 190)
    level = await client.get_stock(T, S, "sku-1")
    assert (level.on_hand, level.reserved, level.available) == (10, 10, 0)
    assert all(s.shortages[0].available >= 0 for s in short)


async def test_thresholds_announce_low_and_out_of_stock(inventory_server: InventoryServer) -> None:
    client = inventory_server.client
    await client.apply_movements([receipt("in", 10)])
    await client.set_thresholds(
        [pb.Threshold(key=pb.StockKey(tenant_id=T, store_id=S, sku="sku-1"), low_stock=5, out_of_stock=1)]
    )
    sale = pb.Movement(
        idempotency_key="sale-6",
        key=pb.StockKey(tenant_id=T, store_id=S, sku="sku-1"),
        type=pb.MOVEMENT_TYPE_SALE,
    )
    sale.delta = -6
    await client.apply_movements([sale])
    sale.idempotency_key, sale.delta = "sale-3", -3
    await client.apply_movements([sale])
    await client.apply_movements([receipt("restock", 20)])
    async with inventory_server.sessions() as session:
        rows = (
            await session.execute(select(outbox.c.routing_key, outbox.c.body).order_by(outbox.c.id))
        ).all()
    alerts = [
        (key, events.pb.EventEnvelope.FromString(body))
        for key, body in rows
        if key != "inventory.stock_changed"
    ]
    assert [key for key, _ in alerts] == [
        "inventory.low_stock",
        "inventory.out_of_stock",
        "inventory.back_in_stock",
    ]
    assert [envelope.inventory_low_stock.threshold for key, envelope in alerts[:1]] == [5]
    assert alerts[1][1].inventory_out_of_stock.level.available == 1
