"""The inventory API as a caller sees it on either port: per-item outcomes, reasons, permissions."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
from grpc_status import rpc_status

from posgate.contracts import inventory
from tests.integration.inventory.conftest import InventoryServer, start_inventory

pb = inventory.pb
T, S = "t1", "s1"


@pytest.fixture(params=["grpc-port", "stream-edge"])
async def inventory_server(
    request: pytest.FixtureRequest, database_url: str
) -> AsyncIterator[InventoryServer]:
    """The service on SQLite and PostgreSQL; its clients call either of its two ports, which must agree."""
    async for server in start_inventory(database_url, clients_on_edge=request.param == "stream-edge"):
        yield server


def movement(
    key: str, delta: int, kind: int = pb.MOVEMENT_TYPE_ADJUSTMENT, *, sku: str = "sku-1", tenant: str = T
):
    return pb.Movement(
        idempotency_key=key, key=pb.StockKey(tenant_id=tenant, store_id=S, sku=sku), type=kind, delta=delta
    )


async def test_applied_duplicate_and_rejected_per_movement(inventory_server: InventoryServer) -> None:
    client = inventory_server.client
    results = await client.apply_movements(
        [
            movement("r1", 10, pb.MOVEMENT_TYPE_RECEIPT),
            movement("bad-kind", 1, 99),
            movement("bad-sign", 3, pb.MOVEMENT_TYPE_SALE),
            movement("no-sku", 1, sku=""),
            movement("huge", 10**15, pb.MOVEMENT_TYPE_RECEIPT),
            movement("s1", -4, pb.MOVEMENT_TYPE_SALE),
        ]
    )
    outcomes = [(r.idempotency_key, pb.MovementOutcome.Name(r.outcome), r.reason) for r in results]
    assert outcomes == [
        ("r1", "MOVEMENT_OUTCOME_APPLIED", ""),
        ("bad-kind", "MOVEMENT_OUTCOME_REJECTED", "INVALID_ARGUMENT:unknown_kind"),
        ("bad-sign", "MOVEMENT_OUTCOME_REJECTED", "INVALID_ARGUMENT:sign_mismatch"),
        ("no-sku", "MOVEMENT_OUTCOME_REJECTED", "INVALID_ARGUMENT:missing_sku"),
        ("huge", "MOVEMENT_OUTCOME_REJECTED", "INVALID_ARGUMENT:quantity_overflow"),
        ("s1", "MOVEMENT_OUTCOME_APPLIED", ""),
    ]
    assert results[-1].level.on_hand == 6
    again = await client.apply_movements([movement("s1", -4, pb.MOVEMENT_TYPE_SALE)])
    assert again[0].outcome == pb.MOVEMENT_OUTCOME_DUPLICATE
    level = await client.get_stock(T, S, "sku-1")
    assert (level.on_hand, level.reserved, level.available) == (6, 0, 6)


async def test_a_register_sale_is_never_refused_and_negative_stock_is_flagged(
    inventory_server: InventoryServer,
) -> None:
    results = await inventory_server.client.apply_movements([movement("sold", -2, pb.MOVEMENT_TYPE_SALE)])
    assert results[0].outcome == pb.MOVEMENT_OUTCOME_APPLIED
    assert results[0].level.on_hand == -2


async def test_counts_versioned_and_negative_count_rejected(inventory_server: InventoryServer) -> None:
    key = pb.StockKey(tenant_id=T, store_id=S, sku="sku-2")
    results = await inventory_server.client.set_counts(
        [
            pb.StockCount(idempotency_key="c5", key=key, on_hand=12, source_version=5),
            pb.StockCount(idempotency_key="c4", key=key, on_hand=40, source_version=4),
            pb.StockCount(idempotency_key="neg", key=key, on_hand=-1, source_version=9),
        ]
    )
    assert [pb.CountOutcome.Name(r.outcome) for r in results] == [
        "COUNT_OUTCOME_APPLIED",
        "COUNT_OUTCOME_STALE",
        "COUNT_OUTCOME_REJECTED",
    ]
    assert results[2].reason == "INVALID_ARGUMENT:negative_count"
    assert (await inventory_server.client.get_stock(T, S, "sku-2")).on_hand == 12


async def test_a_scoped_caller_cannot_touch_another_tenant(inventory_server: InventoryServer) -> None:
    scoped = inventory_server.scoped_client
    results = await scoped.apply_movements(
        [
            movement("mine", 1, pb.MOVEMENT_TYPE_RECEIPT),
            movement("theirs", 1, pb.MOVEMENT_TYPE_RECEIPT, tenant="t2"),
        ]
    )
    assert [r.reason for r in results] == ["", "PERMISSION_DENIED:tenant_forbidden"]
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await scoped.get_stock("t2", S, "sku-1")
    assert raised.value.code() is grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await scoped.batch_get_stock("t2")
    assert raised.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert await inventory_server.client.batch_get_stock("t2") == []


async def test_bad_requests_get_invalid_argument_with_details(inventory_server: InventoryServer) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await inventory_server.client.apply_movements([])
    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(raised.value)
    assert status is not None and "EMPTY_BATCH" in str(status.details)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await inventory_server.client.get_stock(T, S, "")
    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT


async def test_batch_get_returns_every_known_position(inventory_server: InventoryServer) -> None:
    client = inventory_server.client
    await client.apply_movements(
        [movement(f"m{i}", i + 1, pb.MOVEMENT_TYPE_RECEIPT, sku=f"sku-{i}") for i in range(3)]
    )
    levels = await client.batch_get_stock(T, [S], ["sku-0", "sku-2", "unknown"])
    assert [(level.key.sku, level.on_hand) for level in levels] == [("sku-0", 1), ("sku-2", 3)]


async def test_reserve_commit_and_release_through_the_api(inventory_server: InventoryServer) -> None:
    client = inventory_server.client
    await client.apply_movements([movement("in", 5, pb.MOVEMENT_TYPE_RECEIPT)])
    short = await client.reserve(T, S, {"sku-1": 6}, idempotency_key="r-short")
    assert short.outcome == pb.RESERVE_OUTCOME_INSUFFICIENT_STOCK
    assert [(s.sku, s.requested, s.available) for s in short.shortages] == [("sku-1", 6, 5)]
    held = await client.reserve(T, S, {"sku-1": 3}, idempotency_key="r-ok", order_id="o-1")
    assert held.outcome == pb.RESERVE_OUTCOME_RESERVED
    assert (await client.get_stock(T, S, "sku-1")).available == 2
    committed = await client.commit(T, "r-ok")
    assert committed.reservation.state == pb.RESERVATION_STATE_COMMITTED
    level = await client.get_stock(T, S, "sku-1")
    assert (level.on_hand, level.reserved) == (2, 0)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await client.release(T, "r-ok")
    assert raised.value.code() is grpc.StatusCode.FAILED_PRECONDITION
