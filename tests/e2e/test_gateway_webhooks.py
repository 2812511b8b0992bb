"""Signed webhooks posted to `posgate serve gateway` change stock in `posgate serve inventory`.

PostgreSQL, RabbitMQ (exchanges unique per test) and bearer tokens, as in production.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from posgate.clients.inventory import InventoryClient
from posgate.db.engine import create_engine, session_factory
from posgate.gateway import mappings
from posgate.gateway.adapters.square.adapter import signature
from posgate.gateway.failures import FailureFilter, list_failures
from posgate.gateway.mappings import MappingEntry
from posgate.gateway.tables import MappingKind
from tests.e2e.processes import POSGATE, PosgateProcess, free_port, wait_serving
from tests.integration.gateway.conftest import MAPPED
from tests.unit.gateway.adapters.square import cases as square
from tests.unit.gateway.adapters.standard.cases import CASES, SECRET

TOKEN = "gateway-e2e-token-0123456789"
SQUARE_MAPPED = [
    MappingEntry("square", square.MERCHANT, MappingKind.TENANT, "", "tenant-cafe"),
    MappingEntry("square", square.MERCHANT, MappingKind.STORE, square.LOCATION, "store-cafe-1"),
    MappingEntry("square", square.MERCHANT, MappingKind.SKU, square.VARIATION, "SKU-LATTE"),
]


class Stack:
    """Ports, environments and processes of one gateway + inventory deployment."""

    def __init__(self, postgres_url: str, amqp_url: str, unique_name: str, tmp_path: Path) -> None:
        self.database_url = postgres_url
        self.tmp_path = tmp_path
        self.http_port, self.gateway_port, self.inventory_port = free_port(), free_port(), free_port()
        # The gateway sends its commands to the inventory's stream edge, as deploy/ sets it up.
        self.inventory_edge_port = free_port()
        self.base = {
            "POSGATE_DATABASE_URL": postgres_url,
            "POSGATE_EVENT_TRANSPORT": "rabbitmq",
            "POSGATE_AMQP_URL": amqp_url,
            "POSGATE_EVENTS_EXCHANGE": f"posgate.events.gw.{unique_name}",
            "POSGATE_DEAD_LETTER_EXCHANGE": f"posgate.dlx.gw.{unique_name}",
            "POSGATE_AUTH_TOKENS": TOKEN,
        }
        credentials = [
            {"provider": "square", "tenant": "tenant-cafe", "secrets": [square.SECRET.decode()]},
            {"provider": "standard", "tenant": "tenant-acme", "secrets": [SECRET.decode()]},
        ]
        self.gateway_env = {
            **self.base,
            "POSGATE_GATEWAY_PORT": str(self.gateway_port),
            "POSGATE_GATEWAY_HTTP_PORT": str(self.http_port),
            "POSGATE_INVENTORY_TARGET": f"127.0.0.1:{self.inventory_edge_port}",
            "POSGATE_INTERNAL_TOKEN": TOKEN,
            "POSGATE_WEBHOOK_CREDENTIALS": json.dumps(credentials),
        }
        self.runs = 0
        self.processes: list[PosgateProcess] = []

    def url(self, provider: str, topic: str) -> str:
        return f"http://127.0.0.1:{self.http_port}/v1/integrations/pos/{provider}/webhooks/{topic}"

    async def prepare(self) -> None:
        migrated = subprocess.run([*POSGATE, "migrate"], check=False, env=self.base, capture_output=True)
        assert migrated.returncode == 0, migrated.stderr
        engine = create_engine(self.database_url)
        try:
            async with session_factory(engine)() as session:
                await mappings.upsert(session, [*SQUARE_MAPPED, *MAPPED], datetime.now(UTC))
                await session.commit()
        finally:
            await engine.dispose()

    def process(self, component: str, extra_env: dict[str, str] | None = None) -> PosgateProcess:
        """Start `posgate serve <component>` (not waiting for it)."""
        self.runs += 1
        env = (
            self.gateway_env
            if component == "gateway"
            else {
                **self.base,
                "POSGATE_INVENTORY_PORT": str(self.inventory_port),
                "POSGATE_INVENTORY_STREAM_PORT": str(self.inventory_edge_port),
            }
        )
        log = self.tmp_path / f"{component}-{self.runs}.log"
        process = PosgateProcess(["serve", component], {**env, **(extra_env or {})}, log)
        self.processes.append(process)
        return process

    async def start(self, component: str, extra_env: dict[str, str] | None = None) -> PosgateProcess:
        """Start `posgate serve <component>` and wait until its gRPC port answers SERVING."""
        process = self.process(component, extra_env)
        env = {**self.gateway_env, **(extra_env or {})}
        port = int(env["POSGATE_GATEWAY_PORT"]) if component == "gateway" else self.inventory_port
        await wait_serving(process, port)
        return process

    def stop_all(self) -> None:
        for process in self.processes:
            if process.process.poll() is None:
                assert process.terminate() == 0, process.output()


def square_count_update() -> bytes:
    """Square's recorded inventory.count.updated, created just now (Square signs created_at)."""
    event = json.loads(square.CASES.body("inventory_count_updated.json"))
    event["created_at"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return json.dumps(event).encode()


async def post_square(stack: Stack, body: bytes) -> httpx.Response:
    url = stack.url("square", "inventory")
    headers = {"x-square-hmacsha256-signature": signature(square.SECRET, url, body)}
    async with httpx.AsyncClient() as client:
        return await client.post(url, content=body, headers=headers, timeout=10)


async def latte_on_hand(inventory_client: InventoryClient) -> int:
    return int((await inventory_client.get_stock("tenant-cafe", "store-cafe-1", "SKU-LATTE")).on_hand)


async def wait_for(check, expected, timeout_s: float = 60):
    """Poll `check()` until it returns `expected`; the last value otherwise."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    value = None
    while asyncio.get_running_loop().time() < deadline:
        value = await check()
        if value == expected:
            return value
        await asyncio.sleep(0.2)
    return value


@pytest.mark.postgres
@pytest.mark.rabbitmq
@pytest.mark.slow
async def test_square_count_sent_three_times_changes_stock_once(stack: Stack) -> None:
    await stack.start("inventory")
    await stack.start("gateway")
    client = InventoryClient.connect(f"127.0.0.1:{stack.inventory_port}", token=TOKEN)
    try:
        stream = client.watch_stock("tenant-cafe", store_ids=["store-cafe-1"]).__aiter__()
        first = await asyncio.wait_for(stream.__anext__(), 10)
        assert first.HasField("snapshot")

        body = square_count_update()
        answers = [await post_square(stack, body) for _ in range(3)]

        assert [a.status_code for a in answers] == [202, 200, 200], [a.text for a in answers]
        change = await asyncio.wait_for(stream.__anext__(), 20)
        assert change.HasField("change")
        assert (change.change.level.key.sku, change.change.level.on_hand) == ("SKU-LATTE", 89)
        with pytest.raises(TimeoutError):
            # Nothing else may follow: the duplicates were not dispatched.
            await asyncio.wait_for(stream.__anext__(), 3)
        assert await latte_on_hand(client) == 89
    finally:
        await client.close()


@pytest.mark.postgres
@pytest.mark.rabbitmq
@pytest.mark.slow
async def test_forged_or_stale_deliveries_are_401_recorded_and_change_nothing(stack: Stack) -> None:
    await stack.start("inventory")
    await stack.start("gateway")
    body = CASES.body("inventory_movements.json")
    now = datetime.now(UTC)
    wrong_secret = b"whsec_" + b"d3Jvbmcgc2VjcmV0IGZvciB0aGUgdGVzdA=="
    deliveries = [
        (CASES.tamper(body), dict(CASES.sign(body, SECRET, now))),
        (body, dict(CASES.sign(body, wrong_secret, now))),
        (body, dict(CASES.sign(body, SECRET, now - timedelta(minutes=10)))),
    ]
    async with httpx.AsyncClient() as http:
        answers = [
            await http.post(stack.url("standard", "inventory"), content=b, headers=h, timeout=10)
            for b, h in deliveries
        ]

    assert [(a.status_code, a.json()["reason"]) for a in answers] == [
        (401, "signature_mismatch"),
        (401, "signature_mismatch"),
        (401, "timestamp_stale"),
    ]
    for answer in answers:
        assert SECRET.decode() not in answer.text
    engine = create_engine(stack.database_url)
    try:
        async with session_factory(engine)() as session:
            found = await list_failures(session, FailureFilter(failure_class="auth", provider="standard"))
    finally:
        await engine.dispose()
    assert sorted(f.reason for f in found) == ["signature_mismatch", "signature_mismatch", "timestamp_stale"]
    client = InventoryClient.connect(f"127.0.0.1:{stack.inventory_port}", token=TOKEN)
    try:
        level = await client.get_stock("tenant-acme", "store-berlin", "ACME-TS-L")
    finally:
        await client.close()
    assert level.on_hand == 0
