"""Recorded SearchCatalogObjects pages complete the Square adapter's UpsertItems with items."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from posgate.contracts import catalog
from posgate.gateway.adapters.base import MappingMissing, PayloadError
from posgate.gateway.adapters.square.catalog_api import rfc3339, search_body
from posgate.gateway.adapters.square.catalog_items import complete_upsert, parse_pages
from tests.unit.gateway.adapters.square.cases import CASES, MERCHANT
from tests.unit.gateway.adapters.square.catalog_cases import (
    BEANS,
    BEANS_250,
    COLD_BREW_DELETED,
    LATTE,
    LATTE_LARGE,
    LATTE_SMALL,
    MAPPING,
    page,
    pages,
)


def webhook_request() -> catalog.pb.UpsertItemsRequest:
    """The item-less UpsertItems the adapter builds from `catalog_version_updated.json`."""
    (command,) = CASES.adapter.to_canonical_commands(
        CASES.adapter.parse(CASES.request(CASES.body("catalog_version_updated.json"), {})), MAPPING
    )
    assert isinstance(command.message, catalog.pb.UpsertItemsRequest)
    return command.message


def completed(mapping=MAPPING, fetched=None) -> catalog.pb.UpsertItemsRequest:
    request, held = complete_upsert(webhook_request(), parse_pages(fetched or pages()), mapping, MERCHANT)
    assert held == []
    return request


def test_each_live_item_becomes_an_item_with_its_live_variations_by_mapped_sku() -> None:
    latte, beans = completed().items

    assert (latte.sku, latte.name, latte.description) == ("LATTE", "Latte", "Espresso with steamed milk")
    assert (latte.tenant_id, latte.active, latte.version) == ("tenant-cafe", True, 1715709086854)
    # The deleted Medium variation is dropped; the seller's free-text sku is not a canonical SKU.
    assert [(v.variant_id, v.sku, v.name) for v in latte.variants] == [
        (LATTE_LARGE, "SKU-LATTE", "Large"),
        (LATTE_SMALL, "SKU-LATTE-S", "Small"),
    ]
    assert (beans.sku, beans.description) == ("BEANS", "Whole beans, medium roast")
    assert [(v.variant_id, v.sku, v.name) for v in beans.variants] == [(BEANS_250, "SKU-BEANS-250", "250 g")]


def test_the_webhook_request_keeps_its_meta_and_is_left_as_it_was() -> None:
    before = webhook_request()
    after = completed()
    assert after.meta == before.meta
    assert not before.items


def test_a_deleted_item_that_was_mapped_becomes_inactive_without_variants() -> None:
    mapping = replace(MAPPING, skus={**MAPPING.skus, ("square", MERCHANT, COLD_BREW_DELETED): "COLD-BREW"})

    cold_brew = completed(mapping).items[2]

    assert (cold_brew.sku, cold_brew.name, cold_brew.active) == ("COLD-BREW", "Cold brew", False)
    assert cold_brew.version == 1715708943211
    assert not cold_brew.variants


def test_a_deleted_item_never_mapped_is_skipped() -> None:
    assert [item.sku for item in completed().items] == ["LATTE", "BEANS"]


@pytest.mark.parametrize(("vendor_id", "kept"), [(LATTE_SMALL, ["BEANS"]), (BEANS, ["LATTE"])])
def test_an_item_with_an_unmapped_id_is_held_naming_it_and_the_others_complete(
    vendor_id: str, kept: list[str]
) -> None:
    request, held = complete_upsert(
        webhook_request(), parse_pages(pages()), MAPPING.without("sku", vendor_id), MERCHANT
    )

    assert [item.sku for item in request.items] == kept
    [missing] = held
    assert isinstance(missing, MappingMissing)
    assert (missing.failure_class, missing.reason, missing.detail) == ("mapping", "unmapped_sku", vendor_id)


def test_an_item_on_two_pages_is_kept_once_at_its_newest_version() -> None:
    older, newer = page(1), page(1)
    newer["objects"][0]["version"] += 1
    newer["objects"][0]["item_data"]["name"] = "Caffè latte"
    other = {"objects": [{"type": "CATEGORY", "id": "DRINKS", "version": 1}]}

    objects = parse_pages([newer, other, older])

    assert [(found.id, found.item_data.name) for found in objects] == [(LATTE, "Caffè latte")]


def test_no_changed_items_is_an_upsert_without_items() -> None:
    assert list(completed(fetched=[{"latest_time": "2024-05-14T17:51:27.000Z"}]).items) == []


@pytest.mark.parametrize(
    "bad", [[{"objects": "none"}], [{"objects": [{"type": "ITEM"}]}], ["not a page"], [{"cursor": 7}]]
)
def test_a_page_that_is_not_a_search_response_is_a_validation_failure(bad) -> None:
    with pytest.raises(PayloadError) as caught:
        parse_pages(bad)
    assert (caught.value.failure_class, caught.value.reason) == ("validation", "invalid_catalog_page")


def test_the_search_asks_for_items_changed_after_begin_time_deleted_ones_included() -> None:
    begin = datetime(2024, 5, 14, 19, 51, 27, 5000, tzinfo=timezone(timedelta(hours=2)))

    assert search_body(begin) == {
        "object_types": ["ITEM"],
        "include_related_objects": False,
        "include_deleted_objects": True,
        "begin_time": "2024-05-14T17:51:27.005Z",
    }
    assert search_body(begin, "next-page")["cursor"] == "next-page"
    assert rfc3339(datetime(2024, 5, 14, tzinfo=UTC)) == "2024-05-14T00:00:00.000Z"
