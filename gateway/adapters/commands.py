"""Builders of canonical commands shared by every vendor adapter.

Idempotency keys are derived only from what the vendor sent (the `EventIdentity`, or the
vendor's order id), never from the clock or the delivery, so a redelivered or replayed
webhook yields the same keys and the services apply it at most once. Commands about one
vendor order (submit, status, cancel) are keyed by that order rather than by the event: a
vendor that redelivers under a new event id must still not create a second order. The
canonical order id is derived from the vendor's, so a cancel finds the order a submit made
without a lookup table.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from google.protobuf.message import Message

from posgate.contracts import catalog, inventory, orders, routing, stores
from posgate.contracts.common import command_meta, pb, stamp_into
from posgate.gateway.adapters import keys
from posgate.gateway.adapters.base import CanonicalCommand, EventIdentity, MappingLookup, MappingMissing

# Fixed namespace: changing it would change every derived order id already stored.
ORDER_ID_NAMESPACE = uuid.UUID("6b1f3c52-8f0e-4c4e-9a55-0f1c2d3e4a5b")

SET_COUNTS = f"{inventory.SERVICE_NAME}/SetCounts"
APPLY_MOVEMENTS = f"{inventory.SERVICE_NAME}/ApplyMovements"
SUBMIT_ORDER = f"{routing.SERVICE_NAME}/SubmitOrder"
CANCEL_ORDER = f"{routing.SERVICE_NAME}/CancelOrder"
UPDATE_ORDER_STATUS = f"{routing.SERVICE_NAME}/UpdateOrderStatus"
UPSERT_ITEMS = f"{catalog.SERVICE_NAME}/UpsertItems"
SET_STORE_STATUS = f"{stores.SERVICE_NAME}/SetStoreStatus"


@dataclass(frozen=True, slots=True)
class Origin:
    """What caused a command and whom it is for.

    Attributes:
        provider: Registry name of the vendor (`square`).
        identity: The vendor event's identity; the input of idempotency keys.
        tenant_id: Canonical tenant.
        store_id: Canonical store, when the command is about one.
        received_at: When the gateway received the delivery; the pipeline stamps it when None.

    """

    provider: str
    identity: EventIdentity
    tenant_id: str
    store_id: str = ""
    received_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class CountLine:
    """One absolute count of `sku` at `store_id`; newer wins by version, else by `counted_at`."""

    store_id: str
    sku: str
    on_hand: int
    source_version: int = 0
    counted_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class MovementLine:
    """One stock delta.

    Attributes:
        line: Unique within the event; keys the movement together with the event.
        vendor_line_id: The vendor's own id of this stock change (a refund line id), unique
            for the merchant. When set it alone keys the movement, so a redelivery under
            another event id still moves stock once.

    """

    store_id: str
    sku: str
    movement_type: inventory.pb.MovementType.ValueType
    delta: int
    line: str
    occurred_at: datetime | None = None
    reference: str = ""
    vendor_line_id: str = ""


def entity_key(provider: str, merchant_id: str, *parts: str) -> str:
    """A key hashed from its parts, so ids of any length or alphabet cannot collide."""
    return f"{provider}:{keys.digest([provider, merchant_id, *parts])[:40]}"


def idempotency_key(provider: str, identity: EventIdentity, *parts: str) -> str:
    """A stable key for one command (or one line of it) caused by a vendor event.

    The basis follows the gateway's de-duplication order: the vendor's event id, else the
    entity version, else the time the vendor says the event occurred.
    """
    if identity.provider_event_id:
        basis = ["event", identity.provider_event_id]
    elif identity.entity_version:
        basis = ["version", identity.entity_version]
    else:
        basis = ["occurred", identity.occurred_at.isoformat() if identity.occurred_at else ""]
    return entity_key(provider, identity.merchant_id, identity.entity, *basis, *parts)


def canonical_order_id(provider: str, merchant_id: str, vendor_order_id: str) -> str:
    """The posgate order id of a vendor order; the same on submit, status change and cancel."""
    return str(uuid.uuid5(ORDER_ID_NAMESPACE, keys.material([provider, merchant_id, vendor_order_id])))


def require_tenant(mapping: MappingLookup, provider: str, merchant_id: str) -> str:
    """The canonical tenant of a vendor merchant; `MappingMissing(unmapped_merchant)` if none."""
    return _required(mapping.tenant(provider, merchant_id), "unmapped_merchant", merchant_id)


def require_store(mapping: MappingLookup, provider: str, merchant_id: str, vendor_store_id: str) -> str:
    """The canonical store of a vendor location; `MappingMissing(unmapped_store)` if none."""
    return _required(mapping.store(provider, merchant_id, vendor_store_id), "unmapped_store", vendor_store_id)


def require_sku(mapping: MappingLookup, provider: str, merchant_id: str, vendor_item_id: str) -> str:
    """The canonical SKU of a vendor item id; `MappingMissing(unmapped_sku)` if none."""
    return _required(mapping.sku(provider, merchant_id, vendor_item_id), "unmapped_sku", vendor_item_id)


def _required(canonical_id: str | None, reason: str, vendor_id: str) -> str:
    if not canonical_id:
        raise MappingMissing(reason, vendor_id)
    return canonical_id


def source_for(origin: Origin) -> pb.Source:
    """The `Source` of a command: provider, tenant, merchant, store and the vendor's ids."""
    identity = origin.identity
    source = pb.Source(
        provider=origin.provider,
        tenant_id=origin.tenant_id,
        merchant_id=identity.merchant_id,
        store_id=origin.store_id,
        provider_event_id=identity.provider_event_id or "",
        entity_version=identity.entity_version or "",
    )
    if origin.received_at is not None:
        stamp_into(source.received_at, origin.received_at)
    return source


def command_meta_for(
    identity: EventIdentity, provider: str, tenant: str, store: str, received_at: datetime | None
) -> pb.CommandMeta:
    """The `CommandMeta` of the single command an event causes, keyed by the event."""
    origin = Origin(provider, identity, tenant, store, received_at)
    return command_meta(idempotency_key(provider, identity), source_for(origin))


def _command(origin: Origin, target: str, message: Message, meta: pb.CommandMeta) -> CanonicalCommand:
    return CanonicalCommand(target, message, meta.idempotency_key, origin.tenant_id, origin.store_id)


def _line_key(origin: Origin, *parts: str) -> str:
    return idempotency_key(origin.provider, origin.identity, *parts)


def _movement_key(origin: Origin, line: MovementLine) -> str:
    if line.vendor_line_id:
        return entity_key(origin.provider, origin.identity.merchant_id, "movement", line.vendor_line_id)
    return _line_key(origin, "movement", line.line)


def _order_id(origin: Origin, vendor_order_id: str) -> str:
    return canonical_order_id(origin.provider, origin.identity.merchant_id, vendor_order_id)


def _event_meta(origin: Origin, command: str) -> pb.CommandMeta:
    return command_meta(_line_key(origin, command), source_for(origin))


def _entity_meta(origin: Origin, *parts: str) -> pb.CommandMeta:
    key = entity_key(origin.provider, origin.identity.merchant_id, *parts)
    return command_meta(key, source_for(origin))


def _stock_key(origin: Origin, store_id: str, sku: str) -> inventory.pb.StockKey:
    return inventory.pb.StockKey(tenant_id=origin.tenant_id, store_id=store_id, sku=sku)


def set_counts(origin: Origin, lines: Sequence[CountLine]) -> CanonicalCommand:
    """`InventoryService/SetCounts` with one count per line, each keyed by (store, SKU)."""
    meta = _event_meta(origin, "set_counts")
    request = inventory.pb.SetCountsRequest(meta=meta)
    for line in lines:
        count = request.counts.add(
            idempotency_key=_line_key(origin, "count", line.store_id, line.sku),
            key=_stock_key(origin, line.store_id, line.sku),
            on_hand=line.on_hand,
            source_version=line.source_version,
        )
        if line.counted_at is not None:
            stamp_into(count.counted_at, line.counted_at)
    return _command(origin, SET_COUNTS, request, meta)


def apply_movements(origin: Origin, lines: Sequence[MovementLine]) -> CanonicalCommand:
    """`InventoryService/ApplyMovements` with one movement per line, each with its own key."""
    meta = _event_meta(origin, "apply_movements")
    request = inventory.pb.ApplyMovementsRequest(meta=meta)
    for line in lines:
        movement = request.movements.add(
            idempotency_key=_movement_key(origin, line),
            key=_stock_key(origin, line.store_id, line.sku),
            type=line.movement_type,
            delta=line.delta,
            reference=line.reference,
        )
        if line.occurred_at is not None:
            stamp_into(movement.occurred_at, line.occurred_at)
    return _command(origin, APPLY_MOVEMENTS, request, meta)


def submit_order(origin: Origin, order: orders.pb.Order) -> CanonicalCommand:
    """`RoutingService/SubmitOrder`, keyed by the vendor order (`order.external_order_id`).

    Tenant, source and the derived canonical order id are filled in on a copy of `order`.
    """
    if not order.external_order_id:
        raise ValueError("a vendor order needs its external_order_id")
    meta = _entity_meta(origin, "order", order.external_order_id, "submit")
    filled = orders.pb.Order()
    filled.CopyFrom(order)
    filled.tenant_id = origin.tenant_id
    filled.order_id = _order_id(origin, order.external_order_id)
    filled.source.CopyFrom(meta.source)
    return _command(origin, SUBMIT_ORDER, routing.pb.SubmitOrderRequest(meta=meta, order=filled), meta)


def cancel_order(origin: Origin, vendor_order_id: str, reason: str = "") -> CanonicalCommand:
    """`RoutingService/CancelOrder` for the order `submit_order` made from `vendor_order_id`."""
    meta = _entity_meta(origin, "order", vendor_order_id, "cancel")
    request = routing.pb.CancelOrderRequest(
        meta=meta,
        tenant_id=origin.tenant_id,
        order_id=_order_id(origin, vendor_order_id),
        reason=reason,
    )
    return _command(origin, CANCEL_ORDER, request, meta)


def update_order_status(
    origin: Origin,
    vendor_order_id: str,
    status: orders.pb.OrderStatus.ValueType,
    occurred_at: datetime | None = None,
    reason: str = "",
) -> CanonicalCommand:
    """`RoutingService/UpdateOrderStatus` as the vendor POS reports it; keyed per status."""
    meta = _entity_meta(origin, "order", vendor_order_id, "status", orders.pb.OrderStatus.Name(status))
    request = routing.pb.UpdateOrderStatusRequest(
        meta=meta,
        tenant_id=origin.tenant_id,
        order_id=_order_id(origin, vendor_order_id),
        status=status,
        reason=reason,
        pos_order_id=vendor_order_id,
    )
    if occurred_at is not None:
        stamp_into(request.occurred_at, occurred_at)
    return _command(origin, UPDATE_ORDER_STATUS, request, meta)


def upsert_items(
    origin: Origin, items: Sequence[catalog.pb.Item], *, entity: Sequence[str] = ()
) -> CanonicalCommand:
    """`CatalogService/UpsertItems` for the origin's tenant; keyed by the event, or by `entity`.

    An `entity` key (a catalog version) makes one change notified under several event ids one command.
    """
    meta = _entity_meta(origin, *entity, "upsert_items") if entity else _event_meta(origin, "upsert_items")
    request = catalog.pb.UpsertItemsRequest(meta=meta)
    for item in items:
        added = request.items.add()
        added.CopyFrom(item)
        added.tenant_id = origin.tenant_id
    return _command(origin, UPSERT_ITEMS, request, meta)


def set_store_status(
    origin: Origin, state: stores.pb.StoreState.ValueType, reason: str = "", until: datetime | None = None
) -> CanonicalCommand:
    """`StoreService/SetStoreStatus` for the origin's store."""
    if not origin.store_id:
        raise ValueError("a store status needs the origin's store_id")
    meta = _event_meta(origin, "set_store_status")
    request = stores.pb.SetStoreStatusRequest(
        meta=meta, tenant_id=origin.tenant_id, store_id=origin.store_id, state=state, reason=reason
    )
    if until is not None:
        stamp_into(request.until, until)
    return _command(origin, SET_STORE_STATUS, request, meta)
