"""Deliveries accepted while things break are applied exactly once when they recover.

A gateway SIGKILLed after answering 2xx, and an inventory service down for a minute while
deliveries keep arriving.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import select

from posgate.clients.inventory import InventoryClient
from posgate.db.engine import create_engine, session_factory
from posgate.gateway.tables import CommandState, commands
from tests.e2e.test_gateway_webhooks import (
    TOKEN,
    Stack,
    latte_on_hand,
    post_square,
    square_count_update,
    wait_for,
)
from tests.unit.gateway.adapters.standard.cases import CASES, SECRET


async def command_states(stack: Stack) -> list[str]:
    engine = create_engine(stack.database_url)
    try:
        async with session_factory(engine)() as session:
            return [str(state) for state in (await session.execute(select(commands.c.state))).scalars()]
    finally:
        await engine.dispose()


@pytest.mark.postgres
@pytest.mark.rabbitmq
@pytest.mark.slow
async def test_gateway_killed_after_answering_then_restarted_applies_once(stack: Stack) -> None:
    gateway = await stack.start("gateway")  # inventory not running: nothing can be sent
    body = square_count_update()
    accepted = await post_square(stack, body)
    gateway.process.kill()
    gateway.process.wait(timeout=10)

    assert accepted.status_code == 202, accepted.text
    assert await command_states(stack) == [CommandState.PENDING]

    await stack.start("inventory")
    client = InventoryClient.connect(f"127.0.0.1:{stack.inventory_port}", token=TOKEN)
    try:
        stream = client.watch_stock("tenant-cafe", store_ids=["store-cafe-1"]).__aiter__()
        assert (await asyncio.wait_for(stream.__anext__(), 10)).HasField("snapshot")
        await stack.start("gateway")
        retried = await post_square(stack, body)  # the vendor never saw the 2xx? it retries

        change = await asyncio.wait_for(stream.__anext__(), 60)
        assert change.change.level.on_hand == 89
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(stream.__anext__(), 3)
        assert retried.status_code == 200
        assert await latte_on_hand(client) == 89
        assert await command_states(stack) == [CommandState.DISPATCHED]
    finally:
        await client.close()


def receipt(number: int) -> bytes:
    event = {
        "type": "inventory.movements",
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "data": {
            "merchant_id": "acme-retail",
            "store_id": "berlin-1",
            "movements": [
                {"movement_id": f"rcpt-{number}", "item_id": "TSHIRT-L", "type": "receipt", "delta": number}
            ],
        },
    }
    return json.dumps(event).encode()


@pytest.mark.postgres
@pytest.mark.rabbitmq
@pytest.mark.slow
async def test_inventory_down_for_a_while_everything_applied_once_back(stack: Stack) -> None:
    inventory = await stack.start("inventory")
    await stack.start("gateway")
    assert inventory.terminate() == 0

    async with httpx.AsyncClient() as http:
        answers = []
        for number in (1, 2, 3):
            body = receipt(number)
            headers = dict(CASES.sign(body, SECRET, datetime.now(UTC)))
            answers.append(await http.post(stack.url("standard", "inventory"), content=body, headers=headers))
            # The outage lasts a minute, a delivery every 20 s; the dispatcher retries with backoff.
            await asyncio.sleep(20)
    assert [a.status_code for a in answers] == [202, 202, 202], [a.text for a in answers]

    await stack.start("inventory")
    client = InventoryClient.connect(f"127.0.0.1:{stack.inventory_port}", token=TOKEN)
    try:

        async def on_hand() -> int:
            return int((await client.get_stock("tenant-acme", "store-berlin", "ACME-TS-L")).on_hand)

        assert await wait_for(on_hand, 6, timeout_s=90) == 6
        assert (
            await wait_for(lambda: command_states(stack), [CommandState.DISPATCHED] * 3)
            == [CommandState.DISPATCHED] * 3
        )
        await asyncio.sleep(1)
        assert await on_hand() == 6
    finally:
        await client.close()
