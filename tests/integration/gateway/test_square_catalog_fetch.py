"""Square catalog versions completed from a fake Square Catalog API, on SQLite and PostgreSQL.

A signed `catalog.version.updated` runs through the pipeline into `awaiting_fetch`; the
fetcher pages through a local HTTP server answering like Square's SearchCatalogObjects
(`square_fake`) and stores the changed items in the command's UpsertItems.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import SecretStr

from posgate.contracts import routing
from posgate.gateway.adapters.square.orders_api import SquareOrdersClient
from posgate.gateway.catalog_fetch import CatalogItems
from posgate.gateway.command_fetch import CommandFetcher
from posgate.gateway.failures import replay
from posgate.gateway.mapping_policies import PolicyEntry, set_policy
from posgate.gateway.mappings import MappingEntry, list_mappings
from posgate.gateway.order_fetch import OrderLines
from posgate.gateway.pipeline import ingest
from posgate.gateway.tables import CommandState, MappingKind, UnmappedSkuPolicy, commands
from tests.integration.gateway.catalog_fetching import (
    ITEMS,
    MERCHANT_ONLY,
    TENANT,
    TOKEN,
    VERSION,
    WITHOUT_SMALL,
    catalog_client,
    catalog_updated,
    fetcher,
    notification,
    upsert_of,
    variant_skus,
)
from tests.integration.gateway.conftest import count, load_mappings
from tests.integration.gateway.square_fake import (
    command_row,
    failure_rows,
    fake_square,
)
from tests.unit.gateway.adapters.square.cases import CASES, MERCHANT, NOW, SECRET
from tests.unit.gateway.adapters.square.catalog_cases import CURSOR, LATTE_LARGE, LATTE_SMALL

square = pytest.fixture(fake_square, name="square")
client = pytest.fixture(catalog_client, name="client")


async def test_a_catalog_webhook_waits_for_its_items_and_gets_them_page_by_page(
    sessions, square, client
) -> None:
    fake, _ = square
    command_id = await catalog_updated(sessions)
    row = await command_row(sessions, command_id)
    assert row.state == CommandState.AWAITING_FETCH
    assert row.target == "posgate.catalog.v1.CatalogService/UpsertItems"

    assert await fetcher(sessions, client).fetch_due() == 1

    row = await command_row(sessions, command_id)
    assert (row.state, row.last_error) == (CommandState.AWAITING_SERVICE, None)
    request = upsert_of(row)
    assert [(item.sku, item.name, item.active) for item in request.items] == [
        ("LATTE", "Latte", True),
        ("BEANS", "House espresso beans", True),
    ]
    assert variant_skus(row) == [["SKU-LATTE", "SKU-LATTE-S"], ["SKU-BEANS-250"]]
    assert [variant.variant_id for variant in request.items[0].variants] == [LATTE_LARGE, LATTE_SMALL]
    assert {item.tenant_id for item in request.items} == {TENANT}
    assert request.meta.idempotency_key == row.idempotency_key
    # The merchant's first catalog version: begin a little before it; then follow the cursor.
    first, second = fake.searches
    assert first == {
        "object_types": ["ITEM"],
        "include_related_objects": False,
        "include_deleted_objects": True,
        "begin_time": "2024-05-14T17:46:27.000Z",
    }
    assert second == {**first, "cursor": CURSOR}
    for call in fake.seen:
        assert call["path"] == "/v2/catalog/search"
        assert call["authorization"] == f"Bearer {TOKEN}"
        assert call["content-type"] == "application/json"
        assert call["square-version"]
    assert await failure_rows(sessions) == []


async def test_the_next_version_is_fetched_from_the_version_before(sessions, square, client) -> None:
    fake, _ = square
    await catalog_updated(sessions)
    await fetcher(sessions, client).fetch_due()
    later = notification("b1a4e3c6-0d7e-4f55-9a2e-2f1f0c3d5e77", "2024-05-14T18:20:00.000Z")
    fake.searches.clear()

    command_id = await catalog_updated(sessions, request=later)
    await fetcher(sessions, client).fetch_due()

    assert (await command_row(sessions, command_id)).state == CommandState.AWAITING_SERVICE
    assert [search["begin_time"] for search in fake.searches] == [VERSION, VERSION]


async def test_a_repeated_webhook_is_one_command(sessions, square, client) -> None:
    command_id = await catalog_updated(sessions)

    again = await ingest(sessions, notification(), (SECRET,), NOW, tenant=TENANT)
    other_event = notification("7c0d2e55-1f3a-4b8e-8d61-5a9e0b7c2f10")
    renotified = await ingest(sessions, other_event, (SECRET,), NOW, tenant=TENANT)

    assert again.outcome == "duplicate"
    assert (renotified.outcome, renotified.command_ids, renotified.new_command_ids) == (
        "accepted",
        (command_id,),
        (),
    )
    assert await count(sessions, commands) == 1


async def test_an_item_with_an_unmapped_variation_is_held_while_the_others_go_out(
    sessions, square, client
) -> None:
    command_id = await catalog_updated(sessions, (*MERCHANT_ONLY, *WITHOUT_SMALL))

    await fetcher(sessions, client).fetch_due()

    row = await command_row(sessions, command_id)
    assert row.state == CommandState.AWAITING_SERVICE
    assert variant_skus(row) == [["SKU-BEANS-250"]]  # the latte, one of whose sizes is unmapped, waits
    [failure] = await failure_rows(sessions)
    assert (failure.failure_class, failure.reason, failure.resolved) == ("mapping", "unmapped_sku", False)
    assert LATTE_SMALL in failure.detail
    held = await command_row(sessions, failure.command_id)
    assert (held.state, held.raw_payload_id, held.target) == (
        CommandState.DEAD,
        row.raw_payload_id,
        row.target,
    )
    assert held.idempotency_key == f"{row.idempotency_key}:held:{command_id}"
    assert upsert_of(held).meta.idempotency_key == held.idempotency_key
    assert not upsert_of(held).items

    await load_mappings(sessions, [MappingEntry("square", MERCHANT, MappingKind.SKU, LATTE_SMALL, "SMALL")])
    [result] = await replay(sessions, [failure.id], datetime.now(UTC))
    assert result.outcome == "requeued"
    assert (await command_row(sessions, held.id)).state == CommandState.AWAITING_FETCH

    assert await fetcher(sessions, client).fetch_due() == 1
    completed = await command_row(sessions, held.id)
    assert completed.state == CommandState.AWAITING_SERVICE
    assert variant_skus(completed) == [["SKU-LATTE", "SMALL"], ["SKU-BEANS-250"]]  # fetched again: harmless
    [resolved] = await failure_rows(sessions)
    assert resolved.resolved
    assert await count(sessions, commands) == 2
    assert variant_skus(await command_row(sessions, command_id)) == [["SKU-BEANS-250"]]


async def test_a_held_remainder_replayed_before_its_mapping_exists_is_held_again(
    sessions, square, client
) -> None:
    command_id = await catalog_updated(sessions, (*MERCHANT_ONLY, *WITHOUT_SMALL))
    await fetcher(sessions, client).fetch_due()
    [failure] = await failure_rows(sessions)

    await replay(sessions, [failure.id], datetime.now(UTC))
    await fetcher(sessions, client).fetch_due()

    first_held = await command_row(sessions, failure.command_id)
    assert first_held.state == CommandState.AWAITING_SERVICE
    assert variant_skus(first_held) == [["SKU-BEANS-250"]]
    again = [f for f in await failure_rows(sessions) if f.id != failure.id]
    [open_failure] = [f for f in again if not f.resolved]
    assert open_failure.reason == "unmapped_sku"
    second_held = await command_row(sessions, open_failure.command_id)
    assert second_held.state == CommandState.DEAD
    root = (await command_row(sessions, command_id)).idempotency_key
    assert second_held.idempotency_key == f"{root}:held:{first_held.id}"


async def test_a_version_of_which_no_item_maps_is_held_whole(sessions, square, client) -> None:
    command_id = await catalog_updated(sessions, MERCHANT_ONLY)

    await fetcher(sessions, client).fetch_due()

    row = await command_row(sessions, command_id)
    assert row.state == CommandState.DEAD
    [failure] = await failure_rows(sessions)
    assert (failure.command_id, failure.reason) == (command_id, "unmapped_sku")
    assert await count(sessions, commands) == 1

    await load_mappings(sessions, ITEMS)
    await replay(sessions, [failure.id], datetime.now(UTC))
    await fetcher(sessions, client).fetch_due()
    assert variant_skus(await command_row(sessions, command_id)) == [
        ["SKU-LATTE", "SKU-LATTE-S"],
        ["SKU-BEANS-250"],
    ]


async def test_under_the_create_policy_an_unmapped_variation_maps_to_itself(sessions, square, client) -> None:
    async with sessions() as session:
        await set_policy(session, PolicyEntry("square", MERCHANT, UnmappedSkuPolicy.CREATE), NOW)
        await session.commit()
    command_id = await catalog_updated(sessions, (*MERCHANT_ONLY, *WITHOUT_SMALL))

    await fetcher(sessions, client).fetch_due()

    assert variant_skus(await command_row(sessions, command_id))[0] == ["SKU-LATTE", LATTE_SMALL]
    async with sessions() as session:
        created = await list_mappings(session, "square", MERCHANT, MappingKind.SKU)
    assert {(entry.vendor_id, entry.canonical_id) for entry in created} >= {(LATTE_SMALL, LATTE_SMALL)}
    assert await failure_rows(sessions) == []


async def test_one_fetcher_completes_orders_and_catalogs(sessions, square, client) -> None:
    _, base = square
    catalog_id = await catalog_updated(sessions)
    order_created = CASES.request(CASES.body("order_created.json"))
    order = await ingest(sessions, order_created, (SECRET,), NOW, tenant=TENANT)
    [order_id] = order.command_ids
    orders_api = SquareOrdersClient(base, {MERCHANT: SecretStr(TOKEN)})
    try:
        both = CommandFetcher(sessions, [OrderLines(orders_api), CatalogItems(client)])
        assert await both.fetch_due() == 2
    finally:
        await orders_api.close()

    for command_id in (catalog_id, order_id):
        assert (await command_row(sessions, command_id)).state == CommandState.AWAITING_SERVICE
    assert variant_skus(await command_row(sessions, catalog_id))[1] == ["SKU-BEANS-250"]
    submit = routing.pb.SubmitOrderRequest.FromString(bytes((await command_row(sessions, order_id)).body))
    assert [line.sku for line in submit.order.lines] == ["SKU-LATTE", ""]
