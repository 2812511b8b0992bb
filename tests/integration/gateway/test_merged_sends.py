"""A dispatch round's inventory commands go out merged, and each still gets its own outcome."""

from __future__ import annotations

import grpc

from posgate.clients.inventory import InventoryClient, meta
from posgate.contracts import inventory
from posgate.gateway.claims import Claimed
from posgate.gateway.senders import InventorySender
from posgate.gateway.sending import ItemsRejected, PermanentSendError, TransientSendError
from tests.integration.inventory.conftest import INTERNAL_TOKEN, start_inventory

APPLY = f"{inventory.SERVICE_NAME}/ApplyMovements"
COUNTS = f"{inventory.SERVICE_NAME}/SetCounts"


class CountingClient(InventoryClient):
    """The real client, counting its calls."""

    calls = 0

    async def apply_movements(self, movements, *, command=None):
        self.calls += 1
        return await super().apply_movements(movements, command=command)

    async def set_counts(self, counts, *, command=None):
        self.calls += 1
        return await super().set_counts(counts, command=command)


def receipt(number: int, *, sku: str = "sku-1", tenant: str = "t1", provider: str = "square") -> Claimed:
    movement = inventory.pb.Movement(
        idempotency_key=f"mv-{number}",
        key=inventory.pb.StockKey(tenant_id=tenant, store_id="s1", sku=sku),
        type=inventory.pb.MOVEMENT_TYPE_RECEIPT,
        delta=number,
    )
    request = inventory.pb.ApplyMovementsRequest(meta=meta(provider=provider), movements=[movement])
    return claim(number, APPLY, request.SerializeToString())


def count(number: int, on_hand: int) -> Claimed:
    stock = inventory.pb.StockCount(
        idempotency_key=f"ct-{number}",
        key=inventory.pb.StockKey(tenant_id="t1", store_id="s1", sku="sku-counted"),
        on_hand=on_hand,
        source_version=number,
    )
    request = inventory.pb.SetCountsRequest(meta=meta(provider="square"), counts=[stock])
    return claim(number, COUNTS, request.SerializeToString())


def claim(number: int, target: str, body: bytes) -> Claimed:
    return Claimed(number, target, body, f"cmd-{number}", 1, "t1", "s1", number, "square", "inventory")


async def test_a_round_is_sent_in_one_call_per_method_and_source(database_url: str) -> None:
    async for server in start_inventory(database_url):
        client = CountingClient.connect(f"127.0.0.1:{server.port}", token=INTERNAL_TOKEN)
        try:
            round_ = [receipt(n) for n in range(1, 11)] + [count(11, 7), receipt(12, provider="shopify")]
            outcomes = await InventorySender(client).send_batch(round_)
            level = await server.client.get_stock("t1", "s1", "sku-1")
            counted = await server.client.get_stock("t1", "s1", "sku-counted")
        finally:
            await client.close()

    assert outcomes == [None] * 12
    assert client.calls == 3  # square movements, square counts, shopify movements
    assert level.on_hand == sum(range(1, 11)) + 12
    assert counted.on_hand == 7


async def test_a_rejected_item_fails_only_its_own_command(database_url: str) -> None:
    async for server in start_inventory(database_url):
        round_ = [receipt(1), receipt(2, sku=""), receipt(3)]
        outcomes = await InventorySender(server.client).send_batch(round_)
        level = await server.client.get_stock("t1", "s1", "sku-1")

    assert outcomes[0] is None and outcomes[2] is None
    assert isinstance(outcomes[1], ItemsRejected)
    assert "mv-2" in outcomes[1].details[0]
    assert level.on_hand == 4


class RefusingClient(InventoryClient):
    """A fake of our client: refuses any call holding `poison`, with `code`."""

    def __init__(self, code: grpc.StatusCode, poison: str) -> None:
        self.code = code
        self.poison = poison
        self.sizes: list[int] = []

    async def apply_movements(self, movements, *, command=None):
        self.sizes.append(len(movements))
        if any(m.idempotency_key == self.poison for m in movements):
            raise grpc.aio.AioRpcError(self.code, grpc.aio.Metadata(), grpc.aio.Metadata(), "refused")
        return [
            inventory.pb.MovementResult(
                idempotency_key=m.idempotency_key, outcome=inventory.pb.MOVEMENT_OUTCOME_APPLIED
            )
            for m in movements
        ]


async def test_a_call_refused_as_a_whole_is_retried_command_by_command() -> None:
    client = RefusingClient(grpc.StatusCode.INVALID_ARGUMENT, poison="mv-2")

    outcomes = await InventorySender(client).send_batch([receipt(1), receipt(2), receipt(3)])

    assert client.sizes == [3, 1, 1, 1]
    assert outcomes[0] is None and outcomes[2] is None
    assert isinstance(outcomes[1], PermanentSendError)


async def test_an_unavailable_service_fails_the_whole_call_transiently() -> None:
    client = RefusingClient(grpc.StatusCode.UNAVAILABLE, poison="mv-2")

    outcomes = await InventorySender(client).send_batch([receipt(1), receipt(2)])

    assert client.sizes == [2]
    assert all(isinstance(outcome, TransientSendError) for outcome in outcomes)
