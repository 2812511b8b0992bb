"""Shopify webhooks: signature check, parsing and canonical commands.

Shopify signs the raw body only: `X-Shopify-Hmac-Sha256` = base64(HMAC-SHA256(app client
secret, body)). The topic, shop and webhook id travel in unsigned headers, so the payload
shape is checked against the topic (a replayed `orders/create` body relabelled
`orders/cancelled` has no `cancelled_at` and is refused).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from pydantic import AwareDatetime, TypeAdapter, ValidationError

from posgate.gateway.adapters import commands, payloads, signing
from posgate.gateway.adapters.base import (
    CanonicalCommand,
    EventIdentity,
    InboundRequest,
    MappingLookup,
    PayloadError,
    SignatureError,
    Topic,
    VendorEvent,
)
from posgate.gateway.adapters.shopify import convert
from posgate.gateway.adapters.shopify.models import (
    InventoryLevel,
    Order,
    Product,
    Refund,
    ShopifyEvent,
    ShopifyPayload,
)

PROVIDER = "shopify"
HMAC_HEADER = "x-shopify-hmac-sha256"
TOPIC_HEADER = "x-shopify-topic"
SHOP_HEADER = "x-shopify-shop-domain"
WEBHOOK_ID_HEADER = "x-shopify-webhook-id"
EVENT_ID_HEADER = "x-shopify-event-id"
TRIGGERED_AT_HEADER = "x-shopify-triggered-at"
# Shopify retries a failed delivery for up to 48 hours (8 times in 4 hours on older API
# versions); anything older is a replay.
MAX_AGE = timedelta(hours=49)
# Shopify's clock and ours may disagree a little.
MAX_SKEW = timedelta(minutes=5)

_PAYLOADS: dict[str, type[ShopifyPayload]] = {
    "inventory_levels/update": InventoryLevel,
    "orders/create": Order,
    "orders/cancelled": Order,
    "refunds/create": Refund,
    "products/create": Product,
}
_TIMESTAMP = TypeAdapter(AwareDatetime)


def digest(secret: bytes, body: bytes) -> bytes:
    """The HMAC-SHA256 Shopify computes over the raw body."""
    return signing.hmac_sha256(secret, body)


def signature(secret: bytes, body: bytes) -> str:
    """The `X-Shopify-Hmac-Sha256` header Shopify sends with a body."""
    return base64.b64encode(digest(secret, body)).decode()


class ShopifyAdapter:
    """The Shopify webhook dialect (inventory levels, orders, refunds, products)."""

    name = PROVIDER
    topics = frozenset({Topic.INVENTORY, Topic.ORDERS, Topic.MENU})

    def verify_signature(self, request: InboundRequest, secrets: Sequence[bytes], now: datetime) -> None:
        """Raise `SignatureError` unless one of `secrets` signed the body, and it is fresh."""
        header = request.headers.get(HMAC_HEADER, "").strip()
        if not header:
            raise SignatureError("missing_signature", "no X-Shopify-Hmac-Sha256 header")
        if not secrets:
            raise SignatureError("no_secret_configured", "no Shopify client secret for this account")
        given = signing.decode_base64_digest(header, "X-Shopify-Hmac-Sha256")
        if not signing.matches_any(secrets, request.body, given):
            raise SignatureError("signature_mismatch", "X-Shopify-Hmac-Sha256 does not match")
        triggered_at = _header_time(request.headers)
        if triggered_at is not None and triggered_at < now - MAX_AGE:
            raise SignatureError("timestamp_stale", f"triggered at {triggered_at.isoformat()}")
        if triggered_at is not None and triggered_at > now + MAX_SKEW:
            raise SignatureError("timestamp_stale", f"triggered at {triggered_at.isoformat()}")

    def parse(self, request: InboundRequest) -> VendorEvent:
        """The typed Shopify event; topics posgate does not act on are kept with `model=None`."""
        headers = request.headers
        topic, shop = headers.get(TOPIC_HEADER, "").strip(), headers.get(SHOP_HEADER, "").strip()
        if not topic:
            raise PayloadError("missing_topic", "no X-Shopify-Topic header")
        if not shop:
            raise PayloadError("missing_shop_domain", "no X-Shopify-Shop-Domain header")
        document = payloads.load_exact_json(request.body)
        if not isinstance(document, dict):
            raise PayloadError("invalid_payload", "the body is not a JSON object")
        webhook_id = headers.get(WEBHOOK_ID_HEADER) or None
        payload_type = _PAYLOADS.get(topic)
        if payload_type is None:
            identity = EventIdentity(webhook_id, f"topic:{topic}", None, shop, _header_time(headers))
            return VendorEvent(identity, topic, None)
        try:
            payload = payload_type.model_validate(document)
        except ValidationError as error:
            raise PayloadError("invalid_payload", payloads.validation_detail(error, most=5)) from error
        if topic == "orders/cancelled" and isinstance(payload, Order) and payload.cancelled_at is None:
            raise PayloadError("invalid_payload", "orders/cancelled without cancelled_at")
        event = ShopifyEvent(
            topic=topic,
            shop_domain=shop,
            webhook_id=webhook_id,
            event_id=headers.get(EVENT_ID_HEADER) or None,
            triggered_at=_header_time(headers),
            payload=payload,
        )
        return VendorEvent(_identity(event), topic, event)

    def to_canonical_commands(self, event: VendorEvent, mapping: MappingLookup) -> list[CanonicalCommand]:
        """SetCounts, SubmitOrder, CancelOrder, RETURN movements or UpsertItems by topic."""
        if not isinstance(event.model, ShopifyEvent):
            return []
        payload, identity = event.model.payload, event.identity
        tenant = commands.require_tenant(mapping, PROVIDER, identity.merchant_id)
        lookup = convert.Lookup(PROVIDER, identity.merchant_id, mapping)
        if isinstance(payload, InventoryLevel):
            return convert.inventory_commands(identity, tenant, payload, lookup)
        if isinstance(payload, Refund):
            return convert.refund_commands(identity, tenant, payload, lookup)
        if isinstance(payload, Product):
            return convert.product_commands(identity, tenant, payload, lookup)
        if event.event_type == "orders/cancelled":
            origin = commands.Origin(PROVIDER, identity, tenant)
            return [commands.cancel_order(origin, payload.id, reason=payload.cancel_reason or "")]
        return convert.order_commands(identity, tenant, payload, lookup)


def _header_time(headers: Mapping[str, str]) -> datetime | None:
    raw = headers.get(TRIGGERED_AT_HEADER, "").strip()
    if not raw:
        return None
    try:
        return _TIMESTAMP.validate_python(raw)
    except ValidationError:
        return None


def _identity(event: ShopifyEvent) -> EventIdentity:
    payload = event.payload
    if isinstance(payload, InventoryLevel):
        entity = f"inventory_level:{payload.inventory_item_id}@{payload.location_id}"
        version: datetime | None = payload.updated_at
    elif isinstance(payload, Refund):
        entity, version = f"refund:{payload.id}", payload.processed_at or payload.created_at
    elif isinstance(payload, Product):
        entity, version = f"product:{payload.id}", payload.updated_at
    else:
        entity, version = f"order:{payload.id}", payload.updated_at
    occurred = event.triggered_at or version
    return EventIdentity(
        event.webhook_id, entity, version.isoformat() if version else None, event.shop_domain, occurred
    )
