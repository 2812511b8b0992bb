"""Shopify webhooks: what each documented delivery becomes, and what is refused."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from posgate.contracts import inventory
from posgate.gateway.adapters.base import MappingMissing, PayloadError, SignatureError
from posgate.gateway.adapters.shopify.models import Order, ShopifyEvent
from tests.unit.gateway.adapters.shopify.cases import (
    BIG_ID,
    CASES,
    GRINDER,
    INVENTORY_ITEM,
    LOCATION,
    MAPPING,
    NOW,
    SECRET,
    SHOP,
)
from tests.unit.gateway.adapters.shopify.deliveries import (
    ADAPTER,
    WEBHOOK_ID,
    commands_of,
    delivery,
    edited,
)

# --- signatures ---------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", CASES.valid)
def test_every_recorded_delivery_verifies(fixture: str) -> None:
    ADAPTER.verify_signature(CASES.delivery(fixture), [SECRET], NOW)


def test_a_tampered_body_is_refused() -> None:
    request = CASES.delivery("inventory_levels_update.json")
    tampered = replace(request, body=request.body.replace(b'"available": 42', b'"available": 420'))
    with pytest.raises(SignatureError) as caught:
        ADAPTER.verify_signature(tampered, [SECRET], NOW)
    assert caught.value.reason == "signature_mismatch"
    assert caught.value.failure_class == "auth"


def test_a_wrong_secret_is_refused_without_revealing_either_secret() -> None:
    wrong = b"not-the-shopify-client-secret"
    with pytest.raises(SignatureError) as caught:
        ADAPTER.verify_signature(CASES.delivery("orders_create.json"), [wrong], NOW)
    assert caught.value.reason == "signature_mismatch"
    assert SECRET.decode() not in str(caught.value)
    assert wrong.decode() not in str(caught.value)


def test_the_second_secret_verifies_during_a_rotation() -> None:
    ADAPTER.verify_signature(
        CASES.delivery("orders_create.json"), [b"the-new-secret-not-yet-used", SECRET], NOW
    )


def test_a_missing_signature_is_refused() -> None:
    request = CASES.delivery("orders_create.json")
    unsigned = replace(
        request, headers={k: v for k, v in request.headers.items() if k != "x-shopify-hmac-sha256"}
    )
    with pytest.raises(SignatureError) as caught:
        ADAPTER.verify_signature(unsigned, [SECRET], NOW)
    assert caught.value.reason == "missing_signature"


def test_a_signature_that_is_not_ascii_is_malformed_not_a_crash() -> None:
    request = CASES.delivery("orders_create.json")
    forged = replace(request, headers={**request.headers, "x-shopify-hmac-sha256": "sïgnätüre=="})
    with pytest.raises(SignatureError, match="malformed_signature"):
        ADAPTER.verify_signature(forged, [SECRET], NOW)


@pytest.mark.parametrize(
    ("now", "reason"),
    [(NOW + timedelta(hours=50), "timestamp_stale"), (NOW - timedelta(minutes=10), "timestamp_stale")],
)
def test_a_delivery_outside_the_retry_window_is_refused(now, reason: str) -> None:
    with pytest.raises(SignatureError) as caught:
        ADAPTER.verify_signature(CASES.delivery("orders_create.json"), [SECRET], now)
    assert caught.value.reason == reason


# --- inventory_levels/update ------------------------------------------------------------------


def test_an_inventory_level_becomes_an_absolute_count_of_the_available_quantity() -> None:
    (command,) = commands_of("inventory_levels_update.json")
    assert command.target == "posgate.inventory.v1.InventoryService/SetCounts"
    request = command.message
    assert isinstance(request, inventory.pb.SetCountsRequest)
    (count,) = request.counts
    assert (count.key.tenant_id, count.key.store_id, count.key.sku) == (
        "tenant-roastery",
        "store-roastery-berlin",
        "SKU-BEANS-DARK",
    )
    assert count.on_hand == 42
    assert count.counted_at.ToJsonString() == "2024-05-14T18:02:31Z"
    source = request.meta.source
    assert (source.provider, source.merchant_id, source.provider_event_id) == ("shopify", SHOP, WEBHOOK_ID)
    assert source.entity_version == "2024-05-14T14:02:31-04:00"


def test_ids_beyond_two_to_the_53_stay_exact() -> None:
    event = ADAPTER.parse(CASES.delivery("inventory_levels_update.json"))
    assert isinstance(event.model, ShopifyEvent)
    assert event.model.payload.inventory_item_id == BIG_ID == "9007199254740993"
    assert event.identity.entity == f"inventory_level:{BIG_ID}@{LOCATION}"


def test_an_untracked_item_has_no_count() -> None:
    body = edited("inventory_levels_update.json", lambda d: d.update(available=None))
    event = ADAPTER.parse(delivery(body, "inventory_levels/update"))
    assert ADAPTER.to_canonical_commands(event, MAPPING) == []


def test_two_parses_of_one_delivery_give_the_same_keys() -> None:
    (first,) = commands_of("inventory_levels_update.json")
    (second,) = commands_of("inventory_levels_update.json")
    assert first.idempotency_key == second.idempotency_key
    assert first.message == second.message


@pytest.mark.parametrize(
    ("fixture", "kind", "vendor_id", "reason"),
    [
        ("inventory_levels_update.json", "sku", INVENTORY_ITEM, "unmapped_sku"),
        ("inventory_levels_update.json", "store", LOCATION, "unmapped_store"),
        ("orders_create.json", "sku", GRINDER, "unmapped_sku"),
        ("orders_create.json", "tenant", SHOP, "unmapped_merchant"),
    ],
)
def test_an_unmapped_id_is_a_mapping_failure_naming_the_vendor_id(fixture, kind, vendor_id, reason) -> None:
    with pytest.raises(MappingMissing) as caught:
        commands_of(fixture, MAPPING.without(kind, vendor_id))
    assert (caught.value.reason, caught.value.detail) == (reason, vendor_id)


# --- accepted without commands, and malformed -----------------------------------------------------


def test_a_topic_posgate_does_not_act_on_is_accepted_and_recorded() -> None:
    event = ADAPTER.parse(CASES.delivery("customers_create.json"))
    assert (event.event_type, event.model) == ("customers/create", None)
    assert (event.identity.provider_event_id, event.identity.merchant_id) == (WEBHOOK_ID, SHOP)
    assert ADAPTER.to_canonical_commands(event, MAPPING) == []


def test_the_parsed_order_keeps_the_delivery_headers() -> None:
    event = ADAPTER.parse(CASES.delivery("orders_create.json"))
    assert isinstance(event.model, ShopifyEvent)
    assert isinstance(event.model.payload, Order)
    assert (event.model.topic, event.model.webhook_id) == ("orders/create", WEBHOOK_ID)
    assert event.model.event_id == "98880550-7158-44d4-b7cd-2c97c8a091b5"


@pytest.mark.parametrize("fixture", CASES.malformed)
def test_a_signed_body_of_the_wrong_shape_is_a_payload_error(fixture: str) -> None:
    request = CASES.delivery(fixture)
    ADAPTER.verify_signature(request, [SECRET], NOW)
    with pytest.raises(PayloadError) as caught:
        ADAPTER.parse(request)
    assert caught.value.failure_class == "validation"


@pytest.mark.parametrize("body", [b"", b"{not json", b"[1, 2]", b'{"available": Infinity}'])
def test_a_body_that_is_not_a_json_object_is_a_payload_error(body: bytes) -> None:
    with pytest.raises(PayloadError):
        ADAPTER.parse(delivery(body, "inventory_levels/update"))


@pytest.mark.parametrize("missing", ["x-shopify-topic", "x-shopify-shop-domain"])
def test_a_delivery_without_its_topic_or_shop_is_a_payload_error(missing: str) -> None:
    request = CASES.delivery("orders_create.json")
    stripped = replace(request, headers={k: v for k, v in request.headers.items() if k != missing})
    with pytest.raises(PayloadError):
        ADAPTER.parse(stripped)
