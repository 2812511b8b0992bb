"""Several `posgate serve gateway` processes on one host share the HTTP port (SO_REUSEPORT).

With `POSGATE_GATEWAY_HTTP_REUSE_PORT=true` on each, every process binds the same port and
the kernel spreads new connections over them; each delivery is still stored and applied once,
and the port keeps answering while one of them stops. Without it, a second process refuses
to start and says which address it could not bind.
"""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from posgate.clients.inventory import InventoryClient
from tests.e2e.processes import free_port
from tests.e2e.test_gateway_outages import command_states, receipt
from tests.e2e.test_gateway_webhooks import TOKEN, Stack, wait_for
from tests.unit.gateway.adapters.standard.cases import CASES, SECRET

SHARED = {"POSGATE_GATEWAY_HTTP_REUSE_PORT": "true"}


async def post_receipts(stack: Stack, numbers: range) -> list[int]:
    """One signed receipt per number, each on a new connection (the kernel picks the process)."""
    statuses = []
    for number in numbers:
        body = receipt(number)
        headers = dict(CASES.sign(body, SECRET, datetime.now(UTC)))
        async with httpx.AsyncClient() as http:
            answer = await http.post(stack.url("standard", "inventory"), content=body, headers=headers)
        statuses.append(answer.status_code)
    return statuses


@pytest.mark.postgres
@pytest.mark.rabbitmq
@pytest.mark.slow
async def test_two_gateways_share_the_port_and_apply_each_delivery_once(stack: Stack) -> None:
    await stack.start("inventory")
    first = await stack.start("gateway", SHARED)
    await stack.start("gateway", {**SHARED, "POSGATE_GATEWAY_PORT": str(free_port())})

    before = await post_receipts(stack, range(1, 21))
    assert first.terminate() == 0, first.output()
    after = await post_receipts(stack, range(21, 31))

    assert before == [202] * 20
    assert after == [202] * 10  # the other process holds the port alone now
    client = InventoryClient.connect(f"127.0.0.1:{stack.inventory_port}", token=TOKEN)
    try:

        async def on_hand() -> int:
            return int((await client.get_stock("tenant-acme", "store-berlin", "ACME-TS-L")).on_hand)

        assert await wait_for(on_hand, sum(range(1, 31)), timeout_s=60) == sum(range(1, 31))
    finally:
        await client.close()
    dispatched = ["dispatched"] * 30
    assert await wait_for(lambda: command_states(stack), dispatched) == dispatched


@pytest.mark.postgres
@pytest.mark.rabbitmq
@pytest.mark.slow
async def test_a_second_gateway_without_reuse_port_refuses_to_start(stack: Stack) -> None:
    await stack.start("gateway")
    second = stack.process("gateway", {"POSGATE_GATEWAY_PORT": str(free_port())})

    code = second.process.wait(timeout=30)

    assert code != 0
    assert f"HTTP 127.0.0.1:{stack.http_port}: Address already in use" in second.output()
