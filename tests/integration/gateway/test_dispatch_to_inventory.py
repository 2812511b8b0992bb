"""A signed delivery moves stock in the real inventory service exactly once."""

from __future__ import annotations

from posgate.gateway.dispatch import Dispatcher
from posgate.gateway.failures import FailureFilter, list_failures, replay
from posgate.gateway.pipeline import ingest
from posgate.gateway.senders import InventorySender
from posgate.gateway.tables import commands
from tests.integration.gateway.conftest import MAPPED, SECRETS, count, delivery, load_mappings
from tests.integration.inventory.conftest import start_inventory
from tests.unit.gateway.adapters.standard.cases import NOW

INVENTORY = "posgate.inventory.v1.InventoryService"


async def test_movements_reach_inventory_once(sessions, database_url: str) -> None:
    await load_mappings(sessions, MAPPED)
    request = delivery("inventory_movements.json")
    await ingest(sessions, request, SECRETS, NOW, tenant="tenant-acme")
    await ingest(sessions, request, SECRETS, NOW, tenant="tenant-acme")  # a redelivery: a duplicate

    async for server in start_inventory(database_url):
        dispatcher = Dispatcher(sessions, {INVENTORY: InventorySender(server.client)})
        assert await dispatcher.dispatch_due() == 1
        assert await dispatcher.dispatch_due() == 0
        level = await server.client.get_stock("tenant-acme", "store-berlin", "ACME-TS-L")
        other = await server.client.get_stock("tenant-acme", "store-berlin", "ACME-TS-M")

    assert level.on_hand == 24
    assert other.on_hand == 1  # -1 shrink, +2 adjustment
    assert await count(sessions, commands, commands.c.state == "dispatched") == 1


async def test_a_resent_command_does_not_move_stock_twice(sessions, database_url: str) -> None:
    await load_mappings(sessions, MAPPED)
    await ingest(sessions, delivery("inventory_counts.json"), SECRETS, NOW, tenant="tenant-acme")

    async for server in start_inventory(database_url):
        dispatcher = Dispatcher(sessions, {INVENTORY: InventorySender(server.client)})
        await dispatcher.dispatch_due()
        # An operator forces a resend, as a replay of a dead command would.
        async with sessions() as session:
            await session.execute(commands.update().values(state="pending"))
            await session.commit()
        await dispatcher.dispatch_due()
        level = await server.client.get_stock("tenant-acme", "store-berlin", "ACME-TS-L")
        async with sessions() as session:
            assert await list_failures(session, FailureFilter()) == []

    assert level.on_hand == 12
    assert await replay(sessions, [], NOW) == []
