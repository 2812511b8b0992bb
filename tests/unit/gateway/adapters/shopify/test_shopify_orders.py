"""Shopify orders, refunds and products: the canonical commands each delivery becomes."""

from __future__ import annotations

import pytest

from posgate.contracts import catalog, common, inventory, orders, routing
from posgate.gateway.adapters.base import PayloadError
from posgate.gateway.adapters.commands import canonical_order_id
from tests.unit.gateway.adapters.shopify.cases import (
    BIG_ID,
    CASES,
    MAPPING,
    SHOP,
)
from tests.unit.gateway.adapters.shopify.deliveries import (
    ADAPTER,
    ORDER_ID,
    commands_of,
    delivery,
    edited,
    money_of,
)

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
