"""Shopify webhooks: what each documented delivery becomes, and what is refused."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest

from posgate.contracts import catalog, common, inventory, orders, routing
from posgate.gateway.adapters.base import MappingMissing, PayloadError, SignatureError
from posgate.gateway.adapters.commands import canonical_order_id
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
    TOPICS,
    headers,
)

ADAPTER = CASES.adapter
ORDER_ID = "5678901234567890123"
WEBHOOK_ID = "b54557e4-8a5f-4bf7-9d70-bcd043a1e2f3"


def delivery(body: bytes, topic: str, webhook_id: str = WEBHOOK_ID):
    return CASES.request(body, headers(body, SECRET, NOW, topic, webhook_id))


def commands_of(fixture: str, mapping=MAPPING, webhook_id: str = WEBHOOK_ID):
    request = delivery(CASES.body(fixture), TOPICS[fixture], webhook_id)
    ADAPTER.verify_signature(request, [SECRET], NOW)
    return ADAPTER.to_canonical_commands(ADAPTER.parse(request), mapping)


def edited(fixture: str, edit) -> bytes:
    document = json.loads(CASES.body(fixture))
    edit(document)
    return json.dumps(document).encode()


def money_of(value: common.pb.Money) -> tuple[int, str]:
    return value.amount_minor, value.currency_code


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


# --- orders --------------------------------------------------------------------------------------


def test_a_created_order_is_submitted_with_lines_and_totals_in_minor_units() -> None:
    (command,) = commands_of("orders_create.json")
    assert command.target == "posgate.routing.v1.RoutingService/SubmitOrder"
    request = command.message
    assert isinstance(request, routing.pb.SubmitOrderRequest)
    order = request.order
    assert order.order_id == canonical_order_id("shopify", SHOP, ORDER_ID)
    assert (order.tenant_id, order.external_order_id, order.requested_store_id) == (
        "tenant-roastery",
        ORDER_ID,
        "",
    )
    assert order.channel == common.pb.CHANNEL_WEB
    beans, grinder = order.lines
    assert (beans.line_id, beans.sku, beans.variant_id) == ("866550311766439020", "SKU-BEANS-DARK", BIG_ID)
    assert beans.quantity.units == 2
    assert money_of(beans.unit_price) == (1250, "EUR")
    assert money_of(beans.line_total) == (2400, "EUR")
    assert (grinder.sku, money_of(grinder.unit_price)) == ("SKU-GRINDER", (20000, "EUR"))
    totals = order.totals
    assert [money_of(m)[0] for m in (totals.subtotal, totals.discount_total, totals.tax_total)] == [
        22400,
        100,
        3577,
    ]
    assert (money_of(totals.delivery_fee), money_of(totals.grand_total)) == ((590, "EUR"), (22990, "EUR"))
    assert (order.payment.state, money_of(order.payment.amount)) == (
        orders.pb.PAYMENT_STATE_PREPAID,
        (22990, "EUR"),
    )
    assert (order.customer.customer_id, order.customer.display_name) == ("115310627314723954", "Jon Snow")
    assert order.fulfilment_type == orders.pb.FULFILMENT_TYPE_DELIVERY
    assert list(order.delivery_address.lines) == ["Friedrichstrasse 123", "3. OG"]
    assert (order.delivery_address.postal_code, order.delivery_address.country_code) == ("10117", "DE")
    assert order.delivery_address.location.latitude == pytest.approx(52.5200066)


def test_a_redelivery_under_a_new_webhook_id_submits_the_same_order() -> None:
    (first,) = commands_of("orders_create.json", webhook_id="11111111-aaaa-4bbb-8ccc-000000000001")
    (second,) = commands_of("orders_create.json", webhook_id="22222222-aaaa-4bbb-8ccc-000000000002")
    assert first.idempotency_key == second.idempotency_key
    assert first.message.order.order_id == second.message.order.order_id


def test_a_price_with_more_decimals_than_the_currency_is_refused() -> None:
    body = edited("orders_create.json", lambda d: d["line_items"][0].update(price="12.505"))
    event = ADAPTER.parse(delivery(body, "orders/create"))
    with pytest.raises(PayloadError) as caught:
        ADAPTER.to_canonical_commands(event, MAPPING)
    assert caught.value.reason == "invalid_amount"


def test_a_zero_decimal_currency_keeps_whole_amounts() -> None:
    def in_yen(document: dict) -> None:
        document.update(currency="JPY", subtotal_price="3700", total_discounts="0", total_tax="336")
        document.update(total_price="3700", total_shipping_price_set=None)
        for line in document["line_items"]:
            line.update(price="1850", total_discount="0")

    event = ADAPTER.parse(delivery(edited("orders_create.json", in_yen), "orders/create"))
    (command,) = ADAPTER.to_canonical_commands(event, MAPPING)
    assert money_of(command.message.order.lines[0].unit_price) == (1850, "JPY")


def test_a_cancelled_order_is_cancelled_by_the_id_its_submit_used() -> None:
    (cancel,) = commands_of("orders_cancelled.json")
    assert cancel.target == "posgate.routing.v1.RoutingService/CancelOrder"
    request = cancel.message
    assert isinstance(request, routing.pb.CancelOrderRequest)
    assert request.order_id == canonical_order_id("shopify", SHOP, ORDER_ID)
    assert (request.tenant_id, request.reason) == ("tenant-roastery", "customer")


def test_a_created_order_relabelled_as_cancelled_is_refused() -> None:
    with pytest.raises(PayloadError):
        ADAPTER.parse(delivery(CASES.body("orders_create.json"), "orders/cancelled"))


# --- refunds and products -----------------------------------------------------------------------


def test_a_restocking_refund_returns_only_the_restocked_items_to_stock() -> None:
    (command,) = commands_of("refunds_create.json")
    assert command.target == "posgate.inventory.v1.InventoryService/ApplyMovements"
    request = command.message
    assert isinstance(request, inventory.pb.ApplyMovementsRequest)
    (movement,) = request.movements  # the no_restock line moves nothing
    assert (movement.key.store_id, movement.key.sku) == ("store-roastery-berlin", "SKU-BEANS-DARK")
    assert (movement.type, movement.delta) == (inventory.pb.MOVEMENT_TYPE_RETURN, 1)
    assert movement.reference == canonical_order_id("shopify", SHOP, ORDER_ID)
    assert movement.occurred_at.ToJsonString() == "2024-05-16T14:34:55Z"


def test_a_refund_line_moves_stock_once_whatever_the_webhook_id() -> None:
    (first,) = commands_of("refunds_create.json", webhook_id="11111111-aaaa-4bbb-8ccc-000000000001")
    (second,) = commands_of("refunds_create.json", webhook_id="22222222-aaaa-4bbb-8ccc-000000000002")
    assert first.message.movements[0].idempotency_key == second.message.movements[0].idempotency_key


def test_a_money_only_refund_moves_no_stock() -> None:
    def no_restock(document: dict) -> None:
        for line in document["refund_line_items"]:
            line.update(restock_type="no_restock", location_id=None)

    event = ADAPTER.parse(delivery(edited("refunds_create.json", no_restock), "refunds/create"))
    assert ADAPTER.to_canonical_commands(event, MAPPING) == []


def test_a_created_product_is_upserted_with_its_variants() -> None:
    (command,) = commands_of("products_create.json")
    assert command.target == "posgate.catalog.v1.CatalogService/UpsertItems"
    request = command.message
    assert isinstance(request, catalog.pb.UpsertItemsRequest)
    (item,) = request.items
    assert (item.tenant_id, item.sku, item.name, item.category) == (
        "tenant-roastery",
        "SKU-BEANS",
        "Espresso Beans 1kg",
        "Coffee",
    )
    assert item.active
    dark, medium = item.variants
    assert (dark.variant_id, dark.sku, dict(dark.attributes)) == (
        BIG_ID,
        "SKU-BEANS-DARK",
        {"Roast": "Dark roast"},
    )
    assert list(dark.barcodes) == ["4006381333931"]
    assert (medium.sku, list(medium.barcodes)) == ("SKU-BEANS-MEDIUM", [])


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
