"""Toast: stock and menus webhooks, turned into inventory counts.

Signature (https://doc.toasttab.com/doc/devguide/apiMessageSigning.html): `Toast-Signature`
is the Base64 HMAC-SHA256, keyed with the subscription's webhook secret, of the raw body
immediately followed by the message's timestamp (the body's `timestamp` attribute, as sent).
Toast documents no replay window and retries a message unchanged (`Toast-Attempt-Number`),
so no age limit is enforced here; a replay is caught by the signed event `guid`.

Stock (https://doc.toasttab.com/doc/devguide/apiStockWebhook.html) reports a menu item's
status, not a ledger: out of stock becomes a count of 0, a known quantity becomes a count of
that quantity, both versioned by the event timestamp so an older message never overwrites a
newer one. "In stock" without a quantity says nothing about how many are on hand, so it is
recorded and produces no command (the catalog contract only replaces whole menus, so there
is no per-item availability command to send either). `menus_updated` carries no menu body:
recorded, no command.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from posgate.gateway.adapters import payloads, signing
from posgate.gateway.adapters.base import (
    CanonicalCommand,
    EventIdentity,
    InboundRequest,
    MappingLookup,
    MappingMissing,
    PayloadError,
    SignatureError,
    Topic,
    VendorEvent,
)
from posgate.gateway.adapters.commands import CountLine, Origin, set_counts
from posgate.gateway.adapters.toast.models import (
    MenusUpdatedEvent,
    StockDetails,
    StockEvent,
    StockEventType,
    StockStatus,
    ToastEnvelope,
)

SIGNATURE_HEADER = "toast-signature"
RESTAURANT_HEADER = "toast-restaurant-external-id"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_Model = TypeVar("_Model", bound=BaseModel)


class ToastAdapter:
    """Toast stock and menus webhooks."""

    name = "toast"
    topics = frozenset({Topic.INVENTORY, Topic.MENU})

    def verify_signature(self, request: InboundRequest, secrets: Sequence[bytes], now: datetime) -> None:
        """Check `Toast-Signature` against each secret (several while one is rotated)."""
        del now  # Toast signs no delivery time; see the module docstring.
        header = request.headers.get(SIGNATURE_HEADER, "").strip()
        if not header:
            raise SignatureError("missing_signature", "no Toast-Signature header")
        presented = signing.decode_base64_digest(header, "Toast-Signature")
        signed = request.body + _signed_timestamp(request.body)
        if not signing.matches_any(secrets, signed, presented):
            raise SignatureError("signature_mismatch", "Toast-Signature does not match the body")

    def parse(self, request: InboundRequest) -> VendorEvent:
        """The stock or menus event; other categories are read as an envelope only."""
        raw = payloads.load_json_object(request.body)
        envelope = _validate(ToastEnvelope, raw)
        if envelope.event_category == "stock" and envelope.event_type in set(StockEventType):
            stock = _validate(StockEvent, raw)
            identity = EventIdentity(
                provider_event_id=stock.guid,
                entity=f"menu_item_stock:{stock.details.item_guid}",
                entity_version=str(raw["timestamp"]),
                merchant_id=stock.details.restaurant_guid,
                occurred_at=stock.timestamp,
            )
            return VendorEvent(identity=identity, event_type=envelope.event_type, model=stock)
        if envelope.event_category == "menus" and envelope.event_type == "menus_updated":
            menus = _validate(MenusUpdatedEvent, raw)
            identity = EventIdentity(
                provider_event_id=menus.guid,
                entity=f"menus:{menus.details.restaurant_guid}",
                entity_version=menus.details.published_date.isoformat(),
                merchant_id=menus.details.restaurant_guid,
                occurred_at=menus.timestamp,
            )
            return VendorEvent(identity=identity, event_type=envelope.event_type, model=menus)
        return VendorEvent(
            identity=_envelope_identity(envelope, request), event_type=envelope.event_type, model=None
        )

    def to_canonical_commands(self, event: VendorEvent, mapping: MappingLookup) -> list[CanonicalCommand]:
        """A `SetCounts` for a stock event that states a count; nothing for the rest."""
        stock = event.model
        if not isinstance(stock, StockEvent):
            return []
        counted = _on_hand(stock.details)
        if counted is None:
            return []
        on_hand, warning = counted
        restaurant = stock.details.restaurant_guid
        tenant = mapping.tenant(self.name, restaurant)
        if tenant is None:
            raise MappingMissing("unmapped_merchant", restaurant)
        # A Toast restaurant is both the merchant and the location: one GUID for both.
        store = mapping.store(self.name, restaurant, restaurant)
        if store is None:
            raise MappingMissing("unmapped_store", restaurant)
        sku = _sku(self.name, mapping, stock.details)
        line = CountLine(
            store_id=store,
            sku=sku,
            on_hand=on_hand,
            source_version=_millis(stock.timestamp),
            counted_at=stock.timestamp,
        )
        command = set_counts(Origin(self.name, event.identity, tenant, store), [line])
        return [replace(command, warnings=(warning,))] if warning else [command]


def _signed_timestamp(body: bytes) -> bytes:
    # The signature covers the timestamp inside the body, so a body without one cannot be
    # authenticated at all: that is an auth failure, not a payload one.
    try:
        raw = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raw = None
    stamp = raw.get("timestamp") if isinstance(raw, dict) else None
    if not isinstance(stamp, str):
        raise SignatureError("signature_mismatch", "the body carries no timestamp the signature covers")
    return stamp.encode()


def _validate(model: type[_Model], raw: dict[str, Any]) -> _Model:
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        raise PayloadError("invalid_payload", payloads.validation_detail(error)) from None


def _envelope_identity(envelope: ToastEnvelope, request: InboundRequest) -> EventIdentity:
    restaurant = envelope.details.get("restaurantGuid")
    merchant = restaurant if isinstance(restaurant, str) else request.headers.get(RESTAURANT_HEADER, "")
    return EventIdentity(
        provider_event_id=envelope.guid,
        entity=f"{envelope.event_category}:{envelope.event_type}",
        entity_version=None,
        merchant_id=merchant,
        occurred_at=envelope.timestamp,
    )


def _on_hand(details: StockDetails) -> tuple[int, str] | None:
    """The count a stock status states, with a warning when it had to be rounded."""
    if details.status is StockStatus.OUT_OF_STOCK:
        return 0, ""
    if details.quantity is None:
        return None
    # Toast sends a double; rounding down never promises stock the restaurant lacks.
    whole = math.floor(details.quantity)
    warning = "" if whole == details.quantity else f"quantity {details.quantity} rounded down to {whole}"
    return whole, warning


def _sku(provider: str, mapping: MappingLookup, details: StockDetails) -> str:
    # itemGuid names the item at this restaurant; multiLocationId is the id Toast recommends
    # for an item shared by a restaurant group, so a group can map its items once.
    for vendor_id in (details.item_guid, details.multi_location_id):
        if vendor_id:
            sku = mapping.sku(provider, details.restaurant_guid, vendor_id)
            if sku is not None:
                return sku
    raise MappingMissing("unmapped_sku", details.item_guid)


def _millis(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(milliseconds=1)
