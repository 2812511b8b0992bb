"""PayPal Zettle Pusher API messages, as documented by Zettle.

A Pusher webhook body is an envelope (`organizationUuid`, `messageUuid`, `eventName`,
`messageId`, `payload`, `timestamp`) whose `payload` is a JSON document serialised into a
string, parsed a second time into the event's own model
(https://github.com/iZettle/api-documentation/blob/master/pusher-api/user-guides/subscriptions.md).
Zettle says payloads gain fields as its APIs evolve and unknown fields may be ignored, so
every model ignores them.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class _ZettleModel(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class EventName(StrEnum):
    """The Pusher events posgate turns into commands."""

    INVENTORY_BALANCE_CHANGED = "InventoryBalanceChanged"
    PURCHASE_CREATED = "PurchaseCreated"
    PRODUCT_CREATED = "ProductCreated"


class Envelope(_ZettleModel):
    """The Pusher message around every event; `payload` is still a JSON string here."""

    organization_uuid: str = Field(alias="organizationUuid", min_length=1)
    message_uuid: str = Field(default="", alias="messageUuid")
    event_name: str = Field(alias="eventName", min_length=1)
    message_id: str = Field(alias="messageId", min_length=1)
    payload: str
    timestamp: AwareDatetime


class ChangeStamp(_ZettleModel):
    """Who changed something and when (`updated`, `created` in inventory payloads)."""

    uuid: str = ""
    timestamp: AwareDatetime


class Balance(_ZettleModel):
    """The balance of one product variant at one inventory location (a decimal string)."""

    organization_uuid: str = Field(default="", alias="organizationUuid")
    location_uuid: str = Field(alias="locationUuid", min_length=1)
    product_uuid: str = Field(alias="productUuid", min_length=1)
    variant_uuid: str = Field(alias="variantUuid", min_length=1)
    balance: Decimal


class InventoryBalanceChanged(_ZettleModel):
    """`InventoryBalanceChanged`: balances before and after one inventory update."""

    organization_uuid: str = Field(alias="organizationUuid", min_length=1)
    updated: ChangeStamp
    balance_before: list[Balance] = Field(default_factory=list, alias="balanceBefore")
    balance_after: list[Balance] = Field(alias="balanceAfter", min_length=1)
    external_uuid: str | None = Field(default=None, alias="externalUuid")


class PurchaseLine(_ZettleModel):
    """One line of a purchase; custom amounts have no product or variant."""

    id: str
    product_uuid: str | None = Field(default=None, alias="productUuid")
    variant_uuid: str | None = Field(default=None, alias="variantUuid")
    name: str = ""
    sku: str | None = None
    quantity: Decimal
    unit_price: int | None = Field(default=None, alias="unitPrice")
    from_location_uuid: str | None = Field(default=None, alias="fromLocationUuid")
    to_location_uuid: str | None = Field(default=None, alias="toLocationUuid")


class PurchaseCreated(_ZettleModel):
    """`PurchaseCreated`: a sale (or refund) already completed at a Zettle register."""

    purchase_uuid: str = Field(alias="purchaseUuid", min_length=1)
    organization_uuid: str = Field(alias="organizationUuid", min_length=1)
    currency: str = ""
    amount: int = 0
    created: AwareDatetime
    purchase_number: int | None = Field(default=None, alias="purchaseNumber")
    refund: bool = False
    products: list[PurchaseLine] = Field(default_factory=list)


class Price(_ZettleModel):
    """A price in minor units of `currencyId`."""

    amount: int
    currency_id: str = Field(alias="currencyId")


class VariantOption(_ZettleModel):
    """One option of a variant (`Size` = `35mm`)."""

    name: str
    value: str


class ProductVariant(_ZettleModel):
    """One variant of a library product; stock is kept per variant."""

    uuid: str = Field(min_length=1)
    name: str = ""
    sku: str | None = None
    barcode: str | None = None
    price: Price | None = None
    options: list[VariantOption] = Field(default_factory=list)


class Category(_ZettleModel):
    """A product library category."""

    uuid: str = ""
    name: str = ""


class ProductCreated(_ZettleModel):
    """`ProductCreated`: a product added to the Zettle product library."""

    uuid: str = Field(min_length=1)
    organization_uuid: str = Field(alias="organizationUuid", min_length=1)
    name: str = Field(min_length=1)
    description: str | None = None
    variants: list[ProductVariant] = Field(min_length=1)
    category: Category | None = None
    etag: str | None = None
    updated: AwareDatetime | None = None
    created: AwareDatetime | None = None
