"""Toast webhook messages, as documented in the Toast developer guide.

Every Toast webhook body follows the "message data schema"
(https://doc.toasttab.com/doc/devguide/apiMessageDataSchema.html): `timestamp`,
`eventCategory`, `eventType`, `guid` and an event-specific `details` object. posgate reads
the stock webhook (https://doc.toasttab.com/doc/devguide/apiStockWebhook.html) and the menus
webhook (https://doc.toasttab.com/doc/devguide/apiMenusWebhook.html); other categories are
accepted and recorded with only the envelope read.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator


class _ToastModel(BaseModel):
    # Toast adds attributes over time ("versionId: reserved for future use"); unknown ones
    # are ignored rather than refused so a new field never turns into a failed delivery.
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class StockEventType(StrEnum):
    """The `eventType` values of the `stock` event category."""

    IN_STOCK = "in_stock"
    LOW_QUANTITY = "low_quantity"
    OUT_OF_STOCK = "out_of_stock"


class StockStatus(StrEnum):
    """A menu item's inventory status in `details.status`."""

    IN_STOCK = "IN_STOCK"
    QUANTITY = "QUANTITY"
    OUT_OF_STOCK = "OUT_OF_STOCK"


class ToastEnvelope(_ToastModel):
    """The fields every Toast webhook message carries."""

    timestamp: AwareDatetime
    event_category: str = Field(alias="eventCategory", min_length=1)
    event_type: str = Field(alias="eventType", min_length=1)
    guid: str = Field(min_length=1)
    details: dict[str, Any] = Field(default_factory=dict)


class StockDetails(_ToastModel):
    """`details` of a stock event: one menu item (or modifier item reference) at one restaurant.

    `quantity` is present when `status` is QUANTITY (and always for `low_quantity`), absent
    for IN_STOCK and OUT_OF_STOCK.
    """

    item_guid: str = Field(alias="itemGuid", min_length=1)
    restaurant_guid: str = Field(alias="restaurantGuid", min_length=1)
    status: StockStatus
    quantity: float | None = Field(default=None, ge=0)
    multi_location_id: str | None = Field(default=None, alias="multiLocationId")
    version_id: str | None = Field(default=None, alias="versionId")

    @model_validator(mode="after")
    def _quantity_with_quantity_status(self) -> StockDetails:
        if self.status is StockStatus.QUANTITY and self.quantity is None:
            raise ValueError("status QUANTITY needs a quantity")
        return self


class StockEvent(_ToastModel):
    """A `stock` category message (`in_stock`, `low_quantity` or `out_of_stock`)."""

    timestamp: AwareDatetime
    event_type: StockEventType = Field(alias="eventType")
    guid: str
    details: StockDetails


class MenusUpdatedDetails(_ToastModel):
    """`details` of `menus_updated`: which restaurant published its menus, and when."""

    restaurant_guid: str = Field(alias="restaurantGuid", min_length=1)
    published_date: AwareDatetime = Field(alias="publishedDate")


class MenusUpdatedEvent(_ToastModel):
    """A `menus` category message; the body carries no menu, only the publication time."""

    timestamp: AwareDatetime
    guid: str
    details: MenusUpdatedDetails
