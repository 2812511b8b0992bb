"""posgate's own webhook payloads, for partners that integrate natively.

The body follows the Standard Webhooks payload structure (https://www.standardwebhooks.com,
"Payload structure"): a full-stop delimited `type`, the `timestamp` the event occurred at
and the event's `data`. Ids inside `data` are the partner's own (merchant, store, item) and
are resolved to canonical ids through the gateway's mappings, like any vendor's. Unknown
top-level fields are ignored (the spec allows extra metadata there); unknown fields inside
`data` are refused, so a misspelt optional field (`verison`) is reported instead of lost.

Example (`inventory.counts`)::

    {"type": "inventory.counts", "timestamp": "2024-05-01T09:30:00Z",
     "data": {"merchant_id": "acme", "store_id": "berlin-1",
              "counts": [{"item_id": "TSHIRT-L", "on_hand": 12, "version": 1714555800}]}}
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, model_validator

# One delivery stays well under the 20 kB Standard Webhooks recommends keeping payloads to.
MAX_LINES = 500

_Id = Annotated[str, Field(min_length=1, max_length=200)]
MovementKind = Literal["sale", "return", "receipt", "transfer_in", "transfer_out", "shrink", "adjustment"]
StoreState = Literal["open", "closed", "busy", "paused"]

# The sign a movement's delta must have, as the inventory contract defines each kind.
NEGATIVE_KINDS = frozenset({"sale", "transfer_out", "shrink"})
POSITIVE_KINDS = frozenset({"return", "receipt", "transfer_in"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Event(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Count(_Strict):
    """An absolute on-hand count of one item; `version` is monotonic per (store, item)."""

    item_id: _Id
    on_hand: int = Field(ge=0)
    version: int = Field(default=0, ge=0)
    counted_at: AwareDatetime | None = None


class Movement(_Strict):
    """A stock delta of one item; `movement_id` is unique per movement within the partner."""

    movement_id: _Id
    item_id: _Id
    type: MovementKind
    delta: int
    occurred_at: AwareDatetime | None = None
    reference: str = Field(default="", max_length=200)

    @model_validator(mode="after")
    def _delta_sign_matches_type(self) -> Movement:
        if self.delta == 0:
            raise ValueError("delta must not be 0")
        if self.type in NEGATIVE_KINDS and self.delta > 0:
            raise ValueError(f"a {self.type} has a negative delta")
        if self.type in POSITIVE_KINDS and self.delta < 0:
            raise ValueError(f"a {self.type} has a positive delta")
        return self


class CountsData(_Strict):
    """`data` of `inventory.counts`: counts taken at one store."""

    merchant_id: _Id
    store_id: _Id
    counts: list[Count] = Field(min_length=1, max_length=MAX_LINES)

    @model_validator(mode="after")
    def _one_count_per_item(self) -> CountsData:
        if len({count.item_id for count in self.counts}) != len(self.counts):
            raise ValueError("an item is counted twice")
        return self


class MovementsData(_Strict):
    """`data` of `inventory.movements`: stock deltas at one store."""

    merchant_id: _Id
    store_id: _Id
    movements: list[Movement] = Field(min_length=1, max_length=MAX_LINES)

    @model_validator(mode="after")
    def _unique_movement_ids(self) -> MovementsData:
        if len({movement.movement_id for movement in self.movements}) != len(self.movements):
            raise ValueError("a movement_id appears twice")
        return self


class StoreStatusData(_Strict):
    """`data` of `store.status`: a store's operating state, why, and until when."""

    merchant_id: _Id
    store_id: _Id
    state: StoreState
    reason: str = Field(default="", max_length=500)
    until: AwareDatetime | None = None


class CountsEvent(_Event):
    """`inventory.counts`."""

    type: Literal["inventory.counts"]
    timestamp: AwareDatetime
    data: CountsData


class MovementsEvent(_Event):
    """`inventory.movements`."""

    type: Literal["inventory.movements"]
    timestamp: AwareDatetime
    data: MovementsData


class StoreStatusEvent(_Event):
    """`store.status`."""

    type: Literal["store.status"]
    timestamp: AwareDatetime
    data: StoreStatusData


StandardEvent = Annotated[CountsEvent | MovementsEvent | StoreStatusEvent, Field(discriminator="type")]
STANDARD_EVENT: TypeAdapter[CountsEvent | MovementsEvent | StoreStatusEvent] = TypeAdapter(StandardEvent)
