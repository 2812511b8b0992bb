"""Square orders completed from a fake Square Orders API, on SQLite and PostgreSQL.

A signed `order.created` runs through the pipeline into `awaiting_fetch`; the order fetcher
reads the order from a local HTTP server answering like Square's RetrieveOrder (`square_fake`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr

from posgate.contracts import routing
from posgate.gateway.adapters.square.orders_api import SquareOrdersClient
from posgate.gateway.failures import replay
from posgate.gateway.mappings import MappingEntry
from posgate.gateway.order_fetch import OrderFetcher
from posgate.gateway.pipeline import ingest
from posgate.gateway.tables import CommandState, MappingKind
from tests.integration.gateway.conftest import load_mappings
from tests.integration.gateway.square_fake import (
    Clock,
    command_row,
    failure_rows,
    fake_square,
    retried_after_backoff,
)
from tests.unit.gateway.adapters.square.cases import CASES, LOCATION, MERCHANT, NOW, SECRET, VARIATION

TOKEN = "EAAAl-sq-merchant-token-do-not-log"
ORDER_ID = "eA3vssLHKJrv9H0IdJCM3gNqfdcZY"
TENANT = "tenant-cafe"
NOT_FOUND = {"errors": [{"category": "INVALID_REQUEST_ERROR", "code": "NOT_FOUND", "detail": "no order"}]}
WITHOUT_SKUS = [
    MappingEntry("square", MERCHANT, MappingKind.TENANT, "", TENANT),
    MappingEntry("square", MERCHANT, MappingKind.STORE, LOCATION, "store-cafe-1"),
]
SKU = MappingEntry("square", MERCHANT, MappingKind.SKU, VARIATION, "SKU-LATTE")


square = pytest.fixture(fake_square, name="square")


@pytest.fixture
async def client(square) -> AsyncIterator[SquareOrdersClient]:
    orders_api = SquareOrdersClient(square[1], {MERCHANT: SecretStr(TOKEN)})
    yield orders_api
    await orders_api.close()


async def order_created(sessions, entries=(*WITHOUT_SKUS, SKU)) -> int:
    """Map the merchant, then ingest the signed webhook; the id of its SubmitOrder."""
    await load_mappings(sessions, list(entries))
    result = await ingest(
        sessions, CASES.request(CASES.body("order_created.json")), (SECRET,), NOW, tenant=TENANT
    )
    assert result.outcome == "accepted"
    [command_id] = result.command_ids
    return command_id


def order_of(row) -> routing.pb.SubmitOrderRequest:
    return routing.pb.SubmitOrderRequest.FromString(bytes(row.body))


async def test_order_created_waits_for_its_lines_and_gets_them(sessions, square, client) -> None:
    fake, _ = square
    command_id = await order_created(sessions)
    assert (await command_row(sessions, command_id)).state == CommandState.AWAITING_FETCH

    assert await OrderFetcher(sessions, client).fetch_due() == 1

    row = await command_row(sessions, command_id)
    assert row.state == CommandState.AWAITING_SERVICE
    request = order_of(row)
    latte, beans = request.order.lines
    assert (latte.sku, latte.quantity.units, latte.unit_price.amount_minor) == ("SKU-LATTE", 2, 450)
    assert (beans.sku, beans.quantity.decimal, beans.unit_price.amount_minor) == ("", "1.5", 2000)
    assert request.order.totals.grand_total.amount_minor == 4085
    assert request.order.tenant_id == TENANT and request.meta.idempotency_key == row.idempotency_key
    [call] = fake.seen
    assert call["authorization"] == f"Bearer {TOKEN}"
    assert call["path"] == f"/v2/orders/{ORDER_ID}"
    assert call["square-version"]
    assert await failure_rows(sessions) == []


async def test_square_unavailable_is_retried_with_backoff(sessions, square, client) -> None:
    fake, _ = square
    fake.answers.append((503, {"errors": [{"code": "SERVICE_UNAVAILABLE"}]}))
    clock = Clock()
    fetcher = OrderFetcher(sessions, client, clock=clock)
    command_id = await order_created(sessions)

    row = await retried_after_backoff(sessions, fetcher, clock, command_id, "HTTP 503 SERVICE_UNAVAILABLE")
    assert len(fake.seen) == 2
    assert len(order_of(row).order.lines) == 2


async def test_retries_end_in_the_dead_letter_store(sessions, square, client) -> None:
    fake, _ = square
    fake.answers.extend([(429, {}), (500, {})])
    clock = Clock()
    fetcher = OrderFetcher(sessions, client, clock=clock, max_attempts=2)
    command_id = await order_created(sessions)

    await fetcher.fetch_due()
    clock.now += timedelta(minutes=5)
    await fetcher.fetch_due()

    assert (await command_row(sessions, command_id)).state == CommandState.DEAD
    [failure] = await failure_rows(sessions)
    assert (failure.failure_class, failure.reason) == ("processing", "square_order_fetch_exhausted")


async def test_an_order_square_refuses_is_dead_at_once(sessions, square, client) -> None:
    fake, _ = square
    fake.answers.append((404, NOT_FOUND))
    command_id = await order_created(sessions)

    await OrderFetcher(sessions, client).fetch_due()

    row = await command_row(sessions, command_id)
    assert (row.state, row.attempts) == (CommandState.DEAD, 1)
    [failure] = await failure_rows(sessions)
    assert (failure.failure_class, failure.reason) == ("processing", "square_order_fetch_refused")
    assert (failure.command_id, failure.raw_payload_id) == (command_id, row.raw_payload_id)
    assert (failure.provider, failure.tenant_id, failure.store_id) == ("square", TENANT, "store-cafe-1")
    assert "HTTP 404 NOT_FOUND" in failure.detail


async def test_a_merchant_without_token_is_dead_and_replayable(sessions, square) -> None:
    fake, base = square
    command_id = await order_created(sessions)
    without = SquareOrdersClient(base, {})
    try:
        await OrderFetcher(sessions, without).fetch_due()
    finally:
        await without.close()

    assert (await command_row(sessions, command_id)).state == CommandState.DEAD
    [failure] = await failure_rows(sessions)
    assert (failure.failure_class, failure.reason) == ("processing", "square_token_missing")
    assert fake.seen == []

    [result] = await replay(sessions, [failure.id], datetime.now(UTC))
    assert result.outcome == "requeued"
    assert (await command_row(sessions, command_id)).state == CommandState.AWAITING_FETCH


async def test_unmapped_item_is_a_mapping_failure_and_its_replay_fetches_again(
    sessions, square, client
) -> None:
    command_id = await order_created(sessions, WITHOUT_SKUS)
    fetcher = OrderFetcher(sessions, client)

    await fetcher.fetch_due()

    row = await command_row(sessions, command_id)
    assert row.state == CommandState.DEAD
    assert not order_of(row).order.lines
    [failure] = await failure_rows(sessions)
    assert (failure.failure_class, failure.reason, failure.command_id) == (
        "mapping",
        "unmapped_sku",
        command_id,
    )
    assert VARIATION in failure.detail

    await load_mappings(sessions, [SKU])
    [result] = await replay(sessions, [failure.id], datetime.now(UTC))
    assert result.outcome == "requeued"
    row = await command_row(sessions, command_id)
    assert (row.state, row.attempts) == (CommandState.AWAITING_FETCH, 0)

    assert await fetcher.fetch_due() == 1
    row = await command_row(sessions, command_id)
    assert row.state == CommandState.AWAITING_SERVICE
    assert [line.sku for line in order_of(row).order.lines] == ["SKU-LATTE", ""]
    [resolved] = await failure_rows(sessions)
    assert resolved.resolved


async def test_the_token_never_reaches_logs_or_failures(sessions, square, client, caplog) -> None:
    fake, _ = square
    fake.answers.extend([(503, {}), (401, {"errors": [{"code": "UNAUTHORIZED", "detail": TOKEN}]})])
    caplog.set_level(logging.DEBUG)
    clock = Clock()
    fetcher = OrderFetcher(sessions, client, clock=clock)
    command_id = await order_created(sessions)

    await fetcher.fetch_due()
    clock.now += timedelta(minutes=5)
    await fetcher.fetch_due()

    assert [call["authorization"] for call in fake.seen] == [f"Bearer {TOKEN}"] * 2
    row = await command_row(sessions, command_id)
    [failure] = await failure_rows(sessions)
    assert failure.reason == "square_order_fetch_refused"
    assert caplog.records  # the failures were logged, only without the token
    for text in (caplog.text, failure.detail, row.last_error, repr(client.__dict__)):
        assert TOKEN not in text
