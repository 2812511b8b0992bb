"""A recorded RetrieveOrder response completes the Square adapter's SubmitOrder with lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from posgate.contracts import orders, routing
from posgate.gateway.adapters.base import MappingMissing, PayloadError
from posgate.gateway.adapters.square.order_lines import complete_order, parse_retrieved
from tests.unit.gateway.adapters.square.cases import CASES, MAPPING, MERCHANT, VARIATION

FIXTURES = Path(__file__).parent / "fixtures"


def webhook_order() -> orders.pb.Order:
    """The line-less order the adapter builds from `order_created.json`."""
    (command,) = CASES.adapter.to_canonical_commands(
        CASES.adapter.parse(CASES.request(CASES.body("order_created.json"), {})), MAPPING
    )
    assert isinstance(command.message, routing.pb.SubmitOrderRequest)
    return command.message.order


def retrieved(**changes: object):
    body = json.loads((FIXTURES / "retrieve_order_response.json").read_text())
    body["order"].update(changes)
    return parse_retrieved(body)


def test_lines_are_mapped_with_quantities_prices_and_modifiers() -> None:
    order = complete_order(webhook_order(), retrieved(), MAPPING, MERCHANT)

    latte, beans = order.lines
    assert (latte.line_id, latte.sku, latte.variant_id) == ("8uSwfzvUImn3IRrvciqlXC", "SKU-LATTE", VARIATION)
    assert (latte.name, latte.notes) == ("Latte (Large)", "extra hot")
    assert latte.quantity.units == 2
    assert (latte.unit_price.amount_minor, latte.unit_price.currency_code) == (450, "USD")
    assert latte.line_total.amount_minor == 1085
    (oat,) = latte.modifiers
    assert (oat.modifier_id, oat.name, oat.sku) == ("CHQX7Y4KY6N5KINJKZCFURPZ", "Oat milk", "")
    assert (oat.quantity.units, oat.unit_price.amount_minor) == (1, 50)
    # An ad hoc line sells nothing stocked: no SKU; a fractional quantity stays a decimal.
    assert (beans.sku, beans.variant_id, beans.quantity.decimal) == ("", "", "1.5")
    assert beans.unit_price.amount_minor == 2000


def test_totals_and_update_time_come_from_square_and_the_rest_from_the_webhook() -> None:
    before = webhook_order()
    order = complete_order(before, retrieved(), MAPPING, MERCHANT)

    assert (order.totals.grand_total.amount_minor, order.totals.tax_total.amount_minor) == (4085, 85)
    assert order.totals.discount_total.currency_code == "USD"
    assert order.updated_at.ToJsonString() == "2024-05-14T18:35:22.104Z"
    assert (order.order_id, order.tenant_id, order.source) == (
        before.order_id,
        before.tenant_id,
        before.source,
    )
    assert (order.requested_store_id, order.created_at) == (before.requested_store_id, before.created_at)
    assert not before.lines  # the input is left as it was


def test_an_unmapped_variation_is_a_mapping_failure() -> None:
    with pytest.raises(MappingMissing) as caught:
        complete_order(webhook_order(), retrieved(), MAPPING.without("sku", VARIATION), MERCHANT)
    assert (caught.value.failure_class, caught.value.reason) == ("mapping", "unmapped_sku")


def test_another_order_or_a_malformed_response_is_refused() -> None:
    with pytest.raises(PayloadError, match="order_mismatch"):
        complete_order(webhook_order(), retrieved(id="another-order"), MAPPING, MERCHANT)
    with pytest.raises(PayloadError, match="invalid_retrieved_order"):
        parse_retrieved({"errors": [{"code": "NOT_FOUND"}]})
    with pytest.raises(PayloadError, match="invalid_quantity"):
        complete_order(
            webhook_order(), retrieved(line_items=[{"uid": "x", "quantity": "two"}]), MAPPING, MERCHANT
        )
