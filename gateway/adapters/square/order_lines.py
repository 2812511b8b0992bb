"""A Square order as RetrieveOrder returns it, turned into the canonical order with its lines.

Square's order webhooks carry no lines (`order_lines_not_in_webhook`), so the adapter's
SubmitOrder waits as `awaiting_fetch` until the order fetcher (`posgate.gateway.order_fetch`)
has read the order; `complete_order` then fills in lines and totals. It is pure like the
adapter: the mapping snapshot comes in, the completed order goes out.

Square money is already integer minor units; a line's `catalog_object_id` is the item
variation sold, the same id `inventory.count.updated` names, so it maps through the same SKU
mappings. An ad hoc line (no catalog object) sells nothing stocked and gets no SKU.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import ValidationError

from posgate.contracts import common, orders
from posgate.gateway.adapters import commands, payloads
from posgate.gateway.adapters.base import MappingLookup, PayloadError
from posgate.gateway.adapters.square.models import (
    OrderLineItem,
    OrderLineModifier,
    RetrievedOrder,
    RetrieveOrderResponse,
    SquareMoney,
)

PROVIDER = "square"


def parse_retrieved(body: Any) -> RetrievedOrder:
    """The order of a RetrieveOrder response body (decoded JSON).

    Raises:
        PayloadError: The body is not a RetrieveOrder response (`invalid_retrieved_order`).

    """
    try:
        return RetrieveOrderResponse.model_validate(body).order
    except ValidationError as error:
        detail = payloads.validation_detail(error, most=5)
        raise PayloadError("invalid_retrieved_order", detail) from error


def complete_order(
    order: orders.pb.Order, retrieved: RetrievedOrder, mapping: MappingLookup, merchant_id: str
) -> orders.pb.Order:
    """A copy of the webhook's `order` with the retrieved order's lines, totals and update time.

    Raises:
        MappingMissing: A catalog line's variation has no SKU mapping (`unmapped_sku`).
        PayloadError: The retrieved order is another order, or a quantity is not a decimal.

    """
    if retrieved.id != order.external_order_id:
        raise PayloadError("order_mismatch", f"asked for {order.external_order_id}, got {retrieved.id}")
    completed = orders.pb.Order()
    completed.CopyFrom(order)
    del completed.lines[:]
    completed.lines.extend(_line(item, mapping, merchant_id) for item in retrieved.line_items)
    completed.totals.CopyFrom(_totals(retrieved))
    if retrieved.updated_at is not None:
        completed.updated_at.CopyFrom(common.timestamp(retrieved.updated_at))
    return completed


def _line(item: OrderLineItem, mapping: MappingLookup, merchant_id: str) -> orders.pb.OrderLine:
    sku = ""
    if item.catalog_object_id:
        sku = commands.require_sku(mapping, PROVIDER, merchant_id, item.catalog_object_id)
    line = orders.pb.OrderLine(
        line_id=item.uid,
        sku=sku,
        variant_id=item.catalog_object_id,
        name=f"{item.name} ({item.variation_name})" if item.variation_name else item.name,
        quantity=_quantity(item.quantity),
        modifiers=[_modifier(modifier) for modifier in item.modifiers],
        notes=item.note,
    )
    if item.base_price_money is not None:
        line.unit_price.CopyFrom(_money(item.base_price_money))
    if item.total_money is not None:
        line.line_total.CopyFrom(_money(item.total_money))
    return line


def _modifier(modifier: OrderLineModifier) -> orders.pb.Modifier:
    # Square modifiers are not stocked catalog items: they carry no SKU.
    canonical = orders.pb.Modifier(
        modifier_id=modifier.catalog_object_id or modifier.uid,
        name=modifier.name,
        quantity=_quantity(modifier.quantity),
    )
    if modifier.base_price_money is not None:
        canonical.unit_price.CopyFrom(_money(modifier.base_price_money))
    return canonical


def _totals(retrieved: RetrievedOrder) -> orders.pb.OrderTotals:
    totals = orders.pb.OrderTotals()
    for field, money in (
        (totals.grand_total, retrieved.total_money),
        (totals.tax_total, retrieved.total_tax_money),
        (totals.discount_total, retrieved.total_discount_money),
    ):
        if money is not None:
            field.CopyFrom(_money(money))
    return totals


def _quantity(quantity: str) -> common.pb.Quantity:
    """Whole units as an integer; a fractional quantity (sold by measure) as its decimal string."""
    try:
        value = Decimal(quantity)
    except InvalidOperation as error:
        raise PayloadError("invalid_quantity", f"quantity {quantity!r} is not a decimal") from error
    if not value.is_finite() or value < 0:
        raise PayloadError("invalid_quantity", f"quantity {quantity!r} is not a non-negative decimal")
    if value == value.to_integral_value():
        return common.quantity(int(value))
    return common.quantity(format(value.normalize(), "f"))


def _money(money: SquareMoney) -> common.pb.Money:
    return common.money(money.amount, money.currency)
