"""Shopify REST (Admin API) webhook payloads for the topics posgate acts on.

Shopify ids are 64-bit integers that exceed 2^53 (JavaScript's exact range), so they are
kept as decimal strings; the body is parsed with floats as `Decimal`, and prices arrive as
decimal strings ("199.00") that are turned into minor units without ever being floats.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field


def _id_text(value: Any) -> Any:
    # bool is an int subclass and a float id would already have lost digits: refuse both.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


ShopifyId = Annotated[str, BeforeValidator(_id_text), Field(min_length=1, pattern=r"^\d+$")]


class _ShopifyModel(BaseModel):
    """Unknown fields are ignored: Shopify adds fields with every API version."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class InventoryLevel(_ShopifyModel):
    """`inventory_levels/update`: the available quantity of an inventory item at a location."""

    inventory_item_id: ShopifyId
    location_id: ShopifyId
    # None when the item's inventory is not tracked.
    available: int | None
    updated_at: AwareDatetime


class ShopMoney(_ShopifyModel):
    """The shop-currency half of a Shopify `MoneyBag`."""

    amount: Decimal
    currency_code: str = Field(pattern=r"^[A-Z]{3}$")


class MoneyBag(_ShopifyModel):
    """A `*_set` amount: in the shop's and in the customer's (presentment) currency."""

    shop_money: ShopMoney


class LineItem(_ShopifyModel):
    """An order line; `variant_id` is None for a custom line item without a product."""

    id: ShopifyId
    variant_id: ShopifyId | None = None
    product_id: ShopifyId | None = None
    sku: str | None = None
    name: str = ""
    title: str = ""
    quantity: int = Field(ge=0)
    price: Decimal
    total_discount: Decimal = Decimal(0)


class Customer(_ShopifyModel):
    """The customer an order belongs to."""

    id: ShopifyId
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None


class Address(_ShopifyModel):
    """A shipping address; coordinates may be absent."""

    address1: str | None = None
    address2: str | None = None
    city: str | None = None
    province_code: str | None = None
    zip: str | None = None
    country_code: str | None = None
    latitude: Decimal | None = None
    longitude: Decimal | None = None


class Order(_ShopifyModel):
    """`orders/create` and `orders/cancelled`: the whole order, prices in the shop currency."""

    id: ShopifyId
    name: str = ""
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    created_at: AwareDatetime
    updated_at: AwareDatetime
    cancelled_at: AwareDatetime | None = None
    cancel_reason: str | None = None
    source_name: str = ""
    location_id: ShopifyId | None = None
    financial_status: str | None = None
    subtotal_price: Decimal
    total_discounts: Decimal = Decimal(0)
    total_tax: Decimal = Decimal(0)
    total_price: Decimal
    total_shipping_price_set: MoneyBag | None = None
    email: str | None = None
    customer: Customer | None = None
    shipping_address: Address | None = None
    line_items: list[LineItem] = Field(min_length=1)


class RefundedItem(_ShopifyModel):
    """The refunded order line as embedded in a refund line."""

    id: ShopifyId
    variant_id: ShopifyId | None = None


class RefundLineItem(_ShopifyModel):
    """One refunded line, and whether (and where) its items went back to stock."""

    id: ShopifyId
    line_item_id: ShopifyId
    quantity: int = Field(ge=0)
    # "return" / "legacy_restock" put items back; "cancel" releases unfulfilled items;
    # "no_restock" leaves stock alone.
    restock_type: str
    location_id: ShopifyId | None = None
    line_item: RefundedItem


class Refund(_ShopifyModel):
    """`refunds/create`."""

    id: ShopifyId
    order_id: ShopifyId
    created_at: AwareDatetime
    processed_at: AwareDatetime | None = None
    note: str | None = None
    refund_line_items: list[RefundLineItem] = Field(default_factory=list)


class ProductOption(_ShopifyModel):
    """A product option (`Size`, `Colour`); variants hold its value in option1..3."""

    name: str
    position: int = Field(ge=1, le=3)


class Variant(_ShopifyModel):
    """A product variant; stock is kept per variant."""

    id: ShopifyId
    title: str = ""
    sku: str | None = None
    barcode: str | None = None
    price: Decimal
    inventory_item_id: ShopifyId | None = None
    option1: str | None = None
    option2: str | None = None
    option3: str | None = None


class Product(_ShopifyModel):
    """`products/create`: a product with its variants."""

    id: ShopifyId
    title: str
    body_html: str | None = None
    product_type: str = ""
    status: str = "active"
    updated_at: AwareDatetime
    variants: list[Variant] = Field(min_length=1)
    options: list[ProductOption] = Field(default_factory=list)


ShopifyPayload = InventoryLevel | Order | Refund | Product


class ShopifyEvent(_ShopifyModel):
    """A parsed delivery: the headers that identify it and the typed payload."""

    topic: str
    shop_domain: str
    webhook_id: str | None
    event_id: str | None
    triggered_at: AwareDatetime | None
    payload: ShopifyPayload
