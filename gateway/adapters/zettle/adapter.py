"""PayPal Zettle: Pusher API webhooks, turned into counts, sales and catalog items.

Signature (https://github.com/iZettle/api-documentation/blob/master/pusher-api/user-guides/create-subscriptions.md,
step 4): `X-iZettle-Signature` is the hex HMAC-SHA256, keyed with the subscription's
`signingKey`, of `<timestamp>.<payload>` where both are the envelope's fields as sent (the
payload is the JSON string, not a re-serialisation of it).

Only `timestamp` and `payload` are signed; `messageId`, `eventName` and the envelope's
`organizationUuid` are not. Everything a command depends on is therefore read from the
signed payload: the merchant is the payload's `organizationUuid` (which must equal the
envelope's), and idempotency keys derive from the payload's own ids and versions, never from
`messageId`, so a captured message replayed under a fresh `messageId` yields the same keys.
A relabelled `eventName` fails validation, since the three payloads share no required field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from pydantic import AwareDatetime, BaseModel, TypeAdapter, ValidationError

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
from posgate.gateway.adapters.zettle.canonical import balance_commands, product_commands, purchase_commands
from posgate.gateway.adapters.zettle.models import (
    Envelope,
    EventName,
    InventoryBalanceChanged,
    ProductCreated,
    PurchaseCreated,
)

SIGNATURE_HEADER = "x-izettle-signature"
_HEX_SHA256 = re.compile(r"[0-9a-f]{64}")
_TIMESTAMP: TypeAdapter[datetime] = TypeAdapter(AwareDatetime)
_Model = TypeVar("_Model", bound=BaseModel)


class ZettleAdapter:
    """Zettle Pusher API webhooks.

    Zettle documents neither a replay window nor whether a retried message is re-signed
    with a new timestamp, so the default window is generous (a day back, five minutes of
    clock skew ahead): a retry after an outage must not be refused, since Zettle deletes a
    subscription whose deliveries keep failing. Replays inside the window are harmless
    because the keys come from the signed payload.
    """

    name = "zettle"
    topics = frozenset({Topic.INVENTORY, Topic.ORDERS, Topic.MENU})

    def __init__(
        self, max_age: timedelta = timedelta(days=1), max_skew: timedelta = timedelta(minutes=5)
    ) -> None:
        """`max_age`: oldest accepted timestamp; `max_skew`: how far in the future one may be."""
        self.max_age = max_age
        self.max_skew = max_skew

    def verify_signature(self, request: InboundRequest, secrets: Sequence[bytes], now: datetime) -> None:
        """Check `X-iZettle-Signature` against each signing key, then the timestamp's age."""
        header = request.headers.get(SIGNATURE_HEADER, "").strip().lower()
        if not header:
            raise SignatureError("missing_signature", "no X-iZettle-Signature header")
        if not _HEX_SHA256.fullmatch(header):
            raise SignatureError("malformed_signature", "X-iZettle-Signature is not a hex HMAC-SHA256")
        stamp, payload = _signed_fields(request.body)
        signed = f"{stamp}.{payload}".encode()
        presented = bytes.fromhex(header)
        if not signing.matches_any(secrets, signed, presented):
            raise SignatureError("signature_mismatch", "X-iZettle-Signature does not match the payload")
        self._check_fresh(stamp, now)

    def parse(self, request: InboundRequest) -> VendorEvent:
        """The envelope, its payload parsed a second time into the event's model."""
        envelope = _validate(Envelope, payloads.load_json_object(request.body, "body"))
        inner = payloads.load_json_object(envelope.payload.encode(), "payload")
        if envelope.event_name == EventName.INVENTORY_BALANCE_CHANGED:
            balance = _validate(InventoryBalanceChanged, inner)
            _same_organization(envelope, balance.organization_uuid)
            products = ",".join(sorted({entry.product_uuid for entry in balance.balance_after}))
            identity = _identity(
                balance.organization_uuid, f"inventory_balance:{products}", balance.updated.timestamp
            )
            return VendorEvent(identity=identity, event_type=envelope.event_name, model=balance)
        if envelope.event_name == EventName.PURCHASE_CREATED:
            purchase = _validate(PurchaseCreated, inner)
            _same_organization(envelope, purchase.organization_uuid)
            identity = _identity(
                purchase.organization_uuid, f"purchase:{purchase.purchase_uuid}", purchase.created
            )
            return VendorEvent(identity=identity, event_type=envelope.event_name, model=purchase)
        if envelope.event_name == EventName.PRODUCT_CREATED:
            product = _validate(ProductCreated, inner)
            _same_organization(envelope, product.organization_uuid)
            version = product.updated or product.created or envelope.timestamp
            identity = _identity(product.organization_uuid, f"product:{product.uuid}", version, product.etag)
            return VendorEvent(identity=identity, event_type=envelope.event_name, model=product)
        return VendorEvent(identity=_envelope_identity(envelope), event_type=envelope.event_name, model=None)

    def to_canonical_commands(self, event: VendorEvent, mapping: MappingLookup) -> list[CanonicalCommand]:
        """Counts for a balance change, sales for a purchase, an item upsert for a product."""
        model = event.model
        if model is None:
            return []
        merchant = event.identity.merchant_id
        tenant = mapping.tenant(self.name, merchant)
        if tenant is None:
            raise MappingMissing("unmapped_merchant", merchant)
        if isinstance(model, InventoryBalanceChanged):
            return balance_commands(self.name, event.identity, tenant, model, mapping)
        if isinstance(model, PurchaseCreated):
            return purchase_commands(self.name, event.identity, tenant, model, mapping)
        if isinstance(model, ProductCreated):
            return product_commands(self.name, event.identity, tenant, model, mapping)
        return []

    def _check_fresh(self, stamp: str, now: datetime) -> None:
        try:
            sent = _TIMESTAMP.validate_python(stamp)
        except ValidationError:
            raise SignatureError("malformed_signature", "the signed timestamp is not ISO-8601") from None
        if now - sent > self.max_age or sent - now > self.max_skew:
            raise SignatureError(
                "timestamp_stale", f"signed at {sent.isoformat()}, outside the accepted window"
            )


def _signed_fields(body: bytes) -> tuple[str, str]:
    # Both signed fields live in the body: a body without them cannot be authenticated.
    try:
        raw: Any = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raw = None
    stamp = raw.get("timestamp") if isinstance(raw, dict) else None
    payload = raw.get("payload") if isinstance(raw, dict) else None
    if not isinstance(stamp, str) or not isinstance(payload, str):
        raise SignatureError("signature_mismatch", "the body carries no signed timestamp and payload")
    return stamp, payload


def _validate(model: type[_Model], raw: dict[str, Any]) -> _Model:
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        detail = payloads.validation_detail(error)
        raise PayloadError("invalid_payload", f"{model.__name__}: {detail}") from None


def _same_organization(envelope: Envelope, signed_organization: str) -> None:
    if envelope.organization_uuid != signed_organization:
        raise PayloadError(
            "organization_mismatch", "the envelope and the signed payload name other organizations"
        )


def _identity(
    organization: str, entity: str, occurred_at: datetime, version: str | None = None
) -> EventIdentity:
    # No provider_event_id: Zettle's messageId is not signed (see the module docstring).
    return EventIdentity(
        provider_event_id=None,
        entity=entity,
        entity_version=version or occurred_at.isoformat(),
        merchant_id=organization,
        occurred_at=occurred_at,
    )


def _envelope_identity(envelope: Envelope) -> EventIdentity:
    # Events posgate only records produce no command, so the unsigned messageId is enough.
    return EventIdentity(
        provider_event_id=envelope.message_id,
        entity=f"zettle_event:{envelope.event_name}",
        entity_version=None,
        merchant_id=envelope.organization_uuid,
        occurred_at=envelope.timestamp,
    )
