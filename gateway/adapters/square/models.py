"""Square webhook payloads, as documented in the Square API reference (Webhook Events).

Every notification is an envelope `{merchant_id, type, event_id, created_at, data}` whose
`data.object` holds one key named after the payload (`inventory_counts`, `order_created`,
`order_updated`, `refund`, `catalog_version`). Square sends ids as strings, quantities as
decimal strings and money as integer minor units, so no field here is ever a float. The
answers of the API calls the gateway's fetcher makes (RetrieveOrder, SearchCatalogObjects)
are modelled here too.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

OrderState = Literal["OPEN", "COMPLETED", "CANCELED", "DRAFT"]


class _SquareModel(BaseModel):
    """Unknown fields are ignored: Square adds fields without a new API version."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class SquareEventData(_SquareModel):
    """`data`: the type and id of the object the event is about, and the object itself."""

    type: str
    id: str = ""
    object: dict[str, Any] = Field(default_factory=dict)


class SquareEnvelope(_SquareModel):
    """The fields every Square event notification carries."""

    merchant_id: str = Field(min_length=1)
    type: str = Field(min_length=1)
    event_id: str = Field(min_length=1)
    created_at: AwareDatetime
    data: SquareEventData


class InventoryCount(_SquareModel):
    """One `InventoryCount`: the quantity of a catalog object in one state at one location."""

    catalog_object_id: str = Field(min_length=1)
    catalog_object_type: str = "ITEM_VARIATION"
    state: str
    location_id: str = Field(min_length=1)
    # Decimal string: Square supports fractional quantities (up to 5 decimals).
    quantity: str
    calculated_at: AwareDatetime


class InventoryCountUpdated(_SquareModel):
    """`inventory.count.updated`: up to 100 counts; a state change sends before and after."""

    inventory_counts: list[InventoryCount] = Field(min_length=1)


class OrderChange(_SquareModel):
    """`order_created` / `order_updated`: the order's id, version and state, never its lines."""

    order_id: str = Field(min_length=1)
    version: int
    location_id: str = Field(min_length=1)
    state: OrderState
    created_at: AwareDatetime
    updated_at: AwareDatetime | None = None


class OrderEvent(_SquareModel):
    """`order.created` or `order.updated`; exactly one of the two keys is present."""

    order_created: OrderChange | None = None
    order_updated: OrderChange | None = None

    @model_validator(mode="after")
    def _one_change(self) -> OrderEvent:
        if (self.order_created is None) == (self.order_updated is None):
            raise ValueError("expected exactly one of order_created, order_updated")
        return self

    @property
    def change(self) -> OrderChange:
        """The order change, whichever key Square used."""
        if self.order_created is not None:
            return self.order_created
        if self.order_updated is not None:
            return self.order_updated
        raise ValueError("order event without a change")  # unreachable after _one_change


class SquareMoney(_SquareModel):
    """Square `Money`: integer amount in the currency's smallest unit."""

    amount: int
    currency: str = Field(pattern=r"^[A-Z]{3}$")


class PaymentRefund(_SquareModel):
    """A `PaymentRefund` (no line items: itemized returns live on the return order)."""

    id: str = Field(min_length=1)
    status: Literal["PENDING", "COMPLETED", "REJECTED", "FAILED"]
    location_id: str = ""
    amount_money: SquareMoney
    payment_id: str = ""
    order_id: str = ""
    reason: str = ""
    created_at: AwareDatetime
    updated_at: AwareDatetime | None = None
    version: int | None = None


class RefundEvent(_SquareModel):
    """`refund.created` / `refund.updated`."""

    refund: PaymentRefund


class CatalogVersion(_SquareModel):
    """`catalog_version`: only the time the seller's catalog last changed."""

    updated_at: AwareDatetime


class CatalogVersionUpdated(_SquareModel):
    """`catalog.version.updated`: a cue to sync the catalog, with no catalog objects in it."""

    catalog_version: CatalogVersion


SquarePayload = InventoryCountUpdated | OrderEvent | RefundEvent | CatalogVersionUpdated


class SquareEvent(_SquareModel):
    """A parsed notification: the envelope and its typed payload."""

    envelope: SquareEnvelope
    payload: SquarePayload


class OrderLineModifier(_SquareModel):
    """`OrderLineItemModifier`: a modifier applied to a line ("extra shot")."""

    uid: str = ""
    catalog_object_id: str = ""
    name: str = ""
    quantity: str = "1"
    base_price_money: SquareMoney | None = None


class OrderLineItem(_SquareModel):
    """`OrderLineItem` of a retrieved order; ad hoc lines have no `catalog_object_id`."""

    uid: str = Field(min_length=1)
    name: str = ""
    # Decimal string: up to 5 decimals for items sold by measure.
    quantity: str = Field(min_length=1)
    # The item variation sold (the id inventory counts name), when it is a catalog item.
    catalog_object_id: str = ""
    variation_name: str = ""
    note: str = ""
    base_price_money: SquareMoney | None = None
    total_money: SquareMoney | None = None
    modifiers: list[OrderLineModifier] = Field(default_factory=list)


class RetrievedOrder(_SquareModel):
    """The `Order` RetrieveOrder returns (`GET /v2/orders/{order_id}`), as far as posgate uses it."""

    id: str = Field(min_length=1)
    location_id: str = Field(min_length=1)
    state: OrderState
    version: int | None = None
    line_items: list[OrderLineItem] = Field(default_factory=list)
    total_money: SquareMoney | None = None
    total_tax_money: SquareMoney | None = None
    total_discount_money: SquareMoney | None = None
    created_at: AwareDatetime | None = None
    updated_at: AwareDatetime | None = None


class RetrieveOrderResponse(_SquareModel):
    """RetrieveOrder's response body: `{"order": {...}}`."""

    order: RetrievedOrder


class CatalogItemVariationData(_SquareModel):
    """`item_variation_data`: the variation's name, the seller's own SKU text and its price."""

    item_id: str = ""
    name: str = ""
    # Free text the seller typed (often a barcode); posgate's SKUs come from the mappings.
    sku: str = ""
    price_money: SquareMoney | None = None


class CatalogItemVariation(_SquareModel):
    """An ITEM_VARIATION nested in an item: what is sold and stocked (the id SKU mappings name)."""

    id: str = Field(min_length=1)
    is_deleted: bool = False
    item_variation_data: CatalogItemVariationData = Field(default_factory=CatalogItemVariationData)


class CatalogItemData(_SquareModel):
    """`item_data` of an ITEM."""

    name: str = ""
    description: str = ""
    description_plaintext: str = ""
    variations: list[CatalogItemVariation] = Field(default_factory=list)


class CatalogObject(_SquareModel):
    """A `CatalogObject` as SearchCatalogObjects returns it; posgate reads ITEMs only."""

    type: str = Field(min_length=1)
    id: str = Field(min_length=1)
    updated_at: AwareDatetime | None = None
    version: int = 0
    is_deleted: bool = False
    present_at_all_locations: bool = True
    item_data: CatalogItemData | None = None


class SearchCatalogObjectsResponse(_SquareModel):
    """One SearchCatalogObjects page: `{"objects": [...], "cursor": "..."}` (no cursor: the last)."""

    objects: list[CatalogObject] = Field(default_factory=list)
    cursor: str = ""
