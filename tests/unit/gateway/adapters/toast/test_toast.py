"""Toast stock and menus webhooks: what each documented message becomes, and what is refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import timedelta

import pytest

from posgate.contracts import inventory
from posgate.gateway.adapters.base import MappingMissing, PayloadError, SignatureError
from posgate.gateway.adapters.toast.models import MenusUpdatedEvent, StockEvent
from tests.unit.gateway.adapters.toast.cases import CASES, ITEM, MAPPING, RESTAURANT, SECRET

ADAPTER = CASES.adapter


def counts_of(fixture: str, mapping=MAPPING):
    event = ADAPTER.parse(CASES.delivery(fixture))
    commands = ADAPTER.to_canonical_commands(event, mapping)
    assert len(commands) == 1
    assert commands[0].target == "posgate.inventory.v1.InventoryService/SetCounts"
    request = commands[0].message
    assert isinstance(request, inventory.pb.SetCountsRequest)
    return commands[0], request


def millis(text: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(text).timestamp() * 1000)


def test_out_of_stock_is_a_count_of_zero_versioned_by_the_event_time() -> None:
    command, request = counts_of("stock_out_of_stock.json")
    (count,) = request.counts
    assert (count.key.tenant_id, count.key.store_id, count.key.sku) == (
        "tenant-bistro",
        "store-bistro-1",
        "SKU-BURGER",
    )
    assert count.on_hand == 0
    assert count.source_version == millis("2024-05-01T09:30:00.123+00:00")
    assert count.counted_at.ToJsonString() == "2024-05-01T09:30:00.123Z"
    assert (command.tenant_id, command.store_id) == ("tenant-bistro", "store-bistro-1")
    source = request.meta.source
    assert (source.provider, source.merchant_id) == ("toast", RESTAURANT)
    assert source.provider_event_id == "e445f586-081c-4a2a-bcd6-30717a48e17a"


def test_low_quantity_is_a_count_of_the_quantity() -> None:
    _, request = counts_of("stock_low_quantity.json")
    assert request.counts[0].on_hand == 3


def test_in_stock_with_a_quantity_is_a_count_of_that_quantity() -> None:
    _, request = counts_of("stock_in_stock_quantity.json")
    assert request.counts[0].on_hand == 12


def test_an_older_message_has_an_older_version_so_it_cannot_overwrite_a_newer_count() -> None:
    _, older = counts_of("stock_low_quantity.json")
    _, newer = counts_of("stock_out_of_stock.json")
    assert older.counts[0].source_version < newer.counts[0].source_version


def test_in_stock_without_a_quantity_is_recorded_without_a_command() -> None:
    event = ADAPTER.parse(CASES.delivery("stock_in_stock.json"))
    assert isinstance(event.model, StockEvent)
    assert event.identity.provider_event_id == "0f3a6f2e-8a55-4d7e-b1c9-6a9e3f1d2c40"
    assert ADAPTER.to_canonical_commands(event, MAPPING) == []


def test_menus_updated_is_recorded_without_a_command() -> None:
    event = ADAPTER.parse(CASES.delivery("menus_updated.json"))
    assert isinstance(event.model, MenusUpdatedEvent)
    assert event.event_type == "menus_updated"
    assert event.identity.entity == f"menus:{RESTAURANT}"
    assert event.identity.merchant_id == RESTAURANT
    assert ADAPTER.to_canonical_commands(event, MAPPING) == []


def test_other_categories_are_recorded_with_their_envelope_only() -> None:
    body = json.dumps(
        {
            "timestamp": "2024-05-01T09:30:00.000Z",
            "eventCategory": "partner",
            "eventType": "partner_added",
            "guid": "11111111-2222-3333-4444-555555555555",
            "details": {"restaurantGuid": RESTAURANT, "restaurantName": "Bistro"},
        }
    ).encode()
    request = CASES.request(body)
    ADAPTER.verify_signature(request, [SECRET], CASES.now)
    event = ADAPTER.parse(request)
    assert event.model is None
    assert (event.event_type, event.identity.merchant_id) == ("partner_added", RESTAURANT)
    assert event.identity.provider_event_id == "11111111-2222-3333-4444-555555555555"
    assert ADAPTER.to_canonical_commands(event, MAPPING) == []


def test_a_fractional_quantity_is_rounded_down_with_a_warning() -> None:
    raw = json.loads(CASES.body("stock_low_quantity.json"))
    raw["details"]["quantity"] = 2.5
    event = ADAPTER.parse(CASES.request(json.dumps(raw).encode()))
    (command,) = ADAPTER.to_canonical_commands(event, MAPPING)
    assert command.message.counts[0].on_hand == 2
    assert command.warnings == ("quantity 2.5 rounded down to 2",)


def test_an_item_a_restaurant_group_mapped_by_multi_location_id_is_found() -> None:
    group_mapping = MAPPING.without("sku", ITEM)
    group_mapping.skus[("toast", RESTAURANT, "100000000171239569")] = "SKU-BURGER-GROUP"
    _, request = counts_of("stock_out_of_stock.json", group_mapping)
    assert request.counts[0].key.sku == "SKU-BURGER-GROUP"


@pytest.mark.parametrize(
    ("kind", "vendor_id", "reason"),
    [
        ("tenant", RESTAURANT, "unmapped_merchant"),
        ("store", RESTAURANT, "unmapped_store"),
        ("sku", ITEM, "unmapped_sku"),
    ],
)
def test_unmapped_ids_are_mapping_failures_naming_the_toast_id(
    kind: str, vendor_id: str, reason: str
) -> None:
    event = ADAPTER.parse(CASES.delivery("stock_out_of_stock.json"))
    with pytest.raises(MappingMissing) as caught:
        ADAPTER.to_canonical_commands(event, MAPPING.without(kind, vendor_id))
    assert (caught.value.failure_class, caught.value.reason, caught.value.detail) == (
        "mapping",
        reason,
        vendor_id,
    )


def test_the_signature_covers_the_timestamp_not_the_body_alone() -> None:
    body = CASES.body("stock_out_of_stock.json")
    body_only = base64.b64encode(hmac.new(SECRET, body, hashlib.sha256).digest()).decode()
    with pytest.raises(SignatureError) as caught:
        ADAPTER.verify_signature(CASES.request(body, {"Toast-Signature": body_only}), [SECRET], CASES.now)
    assert caught.value.reason == "signature_mismatch"


def test_a_body_without_a_timestamp_cannot_be_authenticated() -> None:
    body = b'{"eventCategory": "stock"}'
    digest = base64.b64encode(hmac.new(SECRET, body, hashlib.sha256).digest()).decode()
    with pytest.raises(SignatureError) as caught:
        ADAPTER.verify_signature(CASES.request(body, {"Toast-Signature": digest}), [SECRET], CASES.now)
    assert caught.value.reason == "signature_mismatch"


def test_a_signature_of_the_wrong_length_is_malformed() -> None:
    request = CASES.request(CASES.body("stock_out_of_stock.json"), {"Toast-Signature": "c2hvcnQ="})
    with pytest.raises(SignatureError) as caught:
        ADAPTER.verify_signature(request, [SECRET], CASES.now)
    assert caught.value.reason == "malformed_signature"


def test_toast_signs_no_delivery_time_so_a_retry_days_later_still_verifies() -> None:
    ADAPTER.verify_signature(
        CASES.delivery("stock_out_of_stock.json"), [SECRET], CASES.now + timedelta(days=3)
    )


def test_a_body_that_is_not_json_is_a_payload_error() -> None:
    with pytest.raises(PayloadError) as caught:
        ADAPTER.parse(CASES.request(b"\xff not json", {}))
    assert (caught.value.failure_class, caught.value.reason) == ("validation", "invalid_json")
