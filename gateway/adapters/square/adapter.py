"""Square webhooks: signature check, parsing and canonical commands.

Square signs each notification with `x-square-hmacsha256-signature`:
base64(HMAC-SHA256(subscription signature key, notification URL + raw body)). The URL is
the one registered with Square, so the gateway must pass the public URL, not the one a
proxy forwarded to.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from pydantic import BaseModel, ValidationError

from posgate.contracts import common, orders
from posgate.gateway.adapters import commands, payloads, signing
from posgate.gateway.adapters.base import (
    CanonicalCommand,
    EventIdentity,
    Fetch,
    InboundRequest,
    MappingLookup,
    PayloadError,
    SignatureError,
    Topic,
    VendorEvent,
)
from posgate.gateway.adapters.square.models import (
    CatalogVersionUpdated,
    InventoryCountUpdated,
    OrderEvent,
    RefundEvent,
    SquareEnvelope,
    SquareEvent,
    SquarePayload,
)

PROVIDER = "square"
SIGNATURE_HEADER = "x-square-hmacsha256-signature"
# Square retries a notification for up to 24 hours; older deliveries are replays.
MAX_AGE = timedelta(hours=25)
# Square's clock and ours may disagree a little.
MAX_SKEW = timedelta(minutes=5)

_PAYLOADS: dict[str, type[SquarePayload]] = {
    "inventory.count.updated": InventoryCountUpdated,
    "order.created": OrderEvent,
    "order.updated": OrderEvent,
    "refund.created": RefundEvent,
    "refund.updated": RefundEvent,
    "catalog.version.updated": CatalogVersionUpdated,
}


def digest(secret: bytes, url: str, body: bytes) -> bytes:
    """The HMAC-SHA256 Square computes over the notification URL followed by the body."""
    return signing.hmac_sha256(secret, url.encode() + body)


def signature(secret: bytes, url: str, body: bytes) -> str:
    """The `x-square-hmacsha256-signature` header Square sends for a notification."""
    return base64.b64encode(digest(secret, url, body)).decode()


class SquareAdapter:
    """The Square webhook dialect (Inventory, Orders, Refunds and Catalog events)."""

    name = PROVIDER
    topics = frozenset({Topic.INVENTORY, Topic.ORDERS, Topic.MENU})

    def verify_signature(self, request: InboundRequest, secrets: Sequence[bytes], now: datetime) -> None:
        """Raise `SignatureError` unless one of `secrets` signed URL + body, and it is fresh."""
        header = request.headers.get(SIGNATURE_HEADER, "").strip()
        if not header:
            raise SignatureError("missing_signature", f"no {SIGNATURE_HEADER} header")
        if not secrets:
            raise SignatureError("no_secret_configured", "no Square signature key for this account")
        given = signing.decode_base64_digest(header, SIGNATURE_HEADER)
        if not signing.matches_any(secrets, request.url.encode() + request.body, given):
            raise SignatureError("signature_mismatch", "x-square-hmacsha256-signature does not match")
        _check_fresh(request.body, now)

    def parse(self, request: InboundRequest) -> VendorEvent:
        """The typed Square event; unknown event types are kept with `model=None`."""
        try:
            envelope = SquareEnvelope.model_validate(payloads.load_exact_json(request.body))
        except ValidationError as error:
            raise PayloadError("invalid_envelope", payloads.validation_detail(error, most=5)) from error
        payload_type = _PAYLOADS.get(envelope.type)
        if payload_type is None:
            return VendorEvent(_identity(envelope, None), envelope.type, None)
        try:
            payload = payload_type.model_validate(envelope.data.object)
        except ValidationError as error:
            raise PayloadError("invalid_payload", payloads.validation_detail(error, most=5)) from error
        event = SquareEvent(envelope=envelope, payload=payload)
        return VendorEvent(_identity(envelope, payload), envelope.type, event)

    def to_canonical_commands(self, event: VendorEvent, mapping: MappingLookup) -> list[CanonicalCommand]:
        """SetCounts, SubmitOrder / status / CancelOrder, UpsertItems for catalog versions; else nothing."""
        if not isinstance(event.model, SquareEvent):
            return []
        payload = event.model.payload
        if isinstance(payload, InventoryCountUpdated):
            return _count_commands(event.identity, payload, mapping)
        if isinstance(payload, OrderEvent):
            return _order_commands(event.identity, payload, mapping)
        if isinstance(payload, CatalogVersionUpdated):
            return _catalog_commands(event.identity, mapping)
        # A PaymentRefund carries no line items and no restock decision (Square restocks
        # through inventory adjustments, which arrive as inventory.count.updated), and
        # ReturnsService.CompleteReturn needs a return posgate authorised first: nothing
        # canonical can be built from it, so it is recorded only.
        return []


def _check_fresh(body: bytes, now: datetime) -> None:
    # created_at is inside the signed body, so it cannot be forged; a body that is not
    # JSON is left for `parse` to reject as malformed.
    try:
        created_at = SquareEnvelope.model_validate(json.loads(body)).created_at
    except (ValueError, ValidationError):
        return
    if created_at < now - MAX_AGE:
        raise SignatureError("timestamp_stale", f"event created at {created_at.isoformat()}")
    if created_at > now + MAX_SKEW:
        raise SignatureError("timestamp_stale", f"event created at {created_at.isoformat()}")


def _identity(envelope: SquareEnvelope, payload: BaseModel | None) -> EventIdentity:
    entity, version = f"{envelope.data.type}:{envelope.data.id}", None
    if isinstance(payload, InventoryCountUpdated):
        objects = sorted({count.catalog_object_id for count in payload.inventory_counts})
        entity = f"inventory_count:{objects[0]}" if len(objects) == 1 else entity
        version = max(count.calculated_at for count in payload.inventory_counts).isoformat()
    elif isinstance(payload, OrderEvent):
        entity, version = f"order:{payload.change.order_id}", str(payload.change.version)
    elif isinstance(payload, RefundEvent):
        refund = payload.refund
        entity = f"refund:{refund.id}"
        version = str(refund.version) if refund.version is not None else _iso(refund.updated_at)
    elif isinstance(payload, CatalogVersionUpdated):
        entity, version = "catalog_version", payload.catalog_version.updated_at.isoformat()
    return EventIdentity(envelope.event_id, entity, version, envelope.merchant_id, envelope.created_at)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _count_commands(
    identity: EventIdentity, payload: InventoryCountUpdated, mapping: MappingLookup
) -> list[CanonicalCommand]:
    # Only IN_STOCK is on hand; a state change also reports the state it left (WASTE, SOLD…).
    in_stock = [c for c in payload.inventory_counts if c.state == "IN_STOCK"]
    if not in_stock:
        return []
    merchant = identity.merchant_id
    tenant = commands.require_tenant(mapping, PROVIDER, merchant)
    lines = [
        commands.CountLine(
            store_id=commands.require_store(mapping, PROVIDER, merchant, count.location_id),
            sku=commands.require_sku(mapping, PROVIDER, merchant, count.catalog_object_id),
            on_hand=_whole_units(count.quantity),
            counted_at=count.calculated_at,
        )
        for count in in_stock
    ]
    stores = {line.store_id for line in lines}
    origin = commands.Origin(PROVIDER, identity, tenant, stores.pop() if len(stores) == 1 else "")
    return [commands.set_counts(origin, lines)]


def _whole_units(quantity: str) -> int:
    try:
        value = Decimal(quantity)
    except InvalidOperation as error:
        raise PayloadError("invalid_quantity", f"quantity {quantity!r} is not a decimal") from error
    if not value.is_finite() or value != value.to_integral_value():
        raise PayloadError("fractional_quantity", f"quantity {quantity!r} is not whole units")
    return int(value)


def _order_commands(
    identity: EventIdentity, payload: OrderEvent, mapping: MappingLookup
) -> list[CanonicalCommand]:
    change = payload.change
    if change.state == "DRAFT":
        return []  # not yet an order the seller has taken
    merchant = identity.merchant_id
    tenant = commands.require_tenant(mapping, PROVIDER, merchant)
    store = commands.require_store(mapping, PROVIDER, merchant, change.location_id)
    origin = commands.Origin(PROVIDER, identity, tenant, store)
    order = orders.pb.Order(
        external_order_id=change.order_id,
        channel=common.pb.CHANNEL_POS,
        requested_store_id=store,
        pos_order_id=change.order_id,
        created_at=common.timestamp(change.created_at),
    )
    # Submit is keyed by the Square order, so repeating it on every update is answered as a
    # duplicate; it makes an update that overtakes its order.created still land. Its lines
    # are fetched from Square's Orders API before it is sent (`posgate.gateway.order_fetch`).
    submit = commands.submit_order(origin, order)
    result = [dataclasses.replace(submit, warnings=("order_lines_not_in_webhook",), fetch=Fetch.ORDER_LINES)]
    occurred = change.updated_at or change.created_at
    if change.state == "COMPLETED":
        completed = orders.pb.ORDER_STATUS_COMPLETED
        result.append(commands.update_order_status(origin, change.order_id, completed, occurred))
    elif change.state == "CANCELED":
        result.append(commands.cancel_order(origin, change.order_id, reason="canceled in Square"))
    return result


def _catalog_commands(identity: EventIdentity, mapping: MappingLookup) -> list[CanonicalCommand]:
    # The version names no objects: an UpsertItems without items, keyed by the merchant's
    # catalog version (a change notified twice is one command), which the catalog fetch
    # (`posgate.gateway.catalog_fetch`) fills with the items changed since the version before.
    tenant = commands.require_tenant(mapping, PROVIDER, identity.merchant_id)
    origin = commands.Origin(PROVIDER, identity, tenant)
    version = identity.entity_version or ""
    upsert = commands.upsert_items(origin, [], entity=(identity.entity, version))
    return [dataclasses.replace(upsert, fetch=Fetch.CATALOG_ITEMS)]
