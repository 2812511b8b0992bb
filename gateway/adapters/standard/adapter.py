"""posgate's own JSON webhook, signed per Standard Webhooks, for natively integrated partners.

Signature (https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md,
"Signature scheme" and "Webhook headers"): `webhook-signature` holds space-delimited
`v1,<base64 HMAC-SHA256>` entries over `{webhook-id}.{webhook-timestamp}.{raw body}`; the
key is the secret `whsec_<base64>` with the prefix dropped, Base64-decoded. Several entries
let a partner sign with the old and the new secret while rotating. `webhook-timestamp` is
integer Unix seconds and must lie within five minutes of now, either way. `webhook-id` is
the same on every retry of an event, so it is the event id commands are keyed by.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from pydantic import ValidationError

from posgate.contracts import inventory, stores
from posgate.gateway.adapters import payloads, signing
from posgate.gateway.adapters.base import (
    AdapterError,
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
from posgate.gateway.adapters.commands import (
    CountLine,
    MovementLine,
    Origin,
    apply_movements,
    set_counts,
    set_store_status,
)
from posgate.gateway.adapters.standard.models import (
    STANDARD_EVENT,
    CountsEvent,
    MovementsEvent,
    StoreStatusEvent,
)

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
TOLERANCE = timedelta(minutes=5)
SECRET_PREFIX = b"whsec_"
_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")

MOVEMENT_TYPES = {
    "sale": inventory.pb.MOVEMENT_TYPE_SALE,
    "return": inventory.pb.MOVEMENT_TYPE_RETURN,
    "receipt": inventory.pb.MOVEMENT_TYPE_RECEIPT,
    "transfer_in": inventory.pb.MOVEMENT_TYPE_TRANSFER_IN,
    "transfer_out": inventory.pb.MOVEMENT_TYPE_TRANSFER_OUT,
    "shrink": inventory.pb.MOVEMENT_TYPE_SHRINK,
    "adjustment": inventory.pb.MOVEMENT_TYPE_ADJUSTMENT,
}
STORE_STATES = {
    "open": stores.pb.STORE_STATE_OPEN,
    "closed": stores.pb.STORE_STATE_CLOSED,
    "busy": stores.pb.STORE_STATE_BUSY,
    "paused": stores.pb.STORE_STATE_PAUSED,
}


class StandardAdapter:
    """posgate's canonical JSON webhook (`inventory.counts`, `inventory.movements`, `store.status`)."""

    name = "standard"
    # ERPs and WMSs that integrate natively post the same canonical stock events to /erp/.
    topics = frozenset({Topic.INVENTORY, Topic.STORE_STATUS, Topic.STOCK})

    def verify_signature(self, request: InboundRequest, secrets: Sequence[bytes], now: datetime) -> None:
        """Check one `v1` entry against one `whsec_` secret, then the timestamp's tolerance."""
        message_id, sent, presented = _signature_headers(request)
        signed = f"{message_id}.{sent}.".encode() + request.body
        keys = [_key(secret) for secret in secrets]
        # Every entry is checked against every key (no early exit).
        matches = [signing.matches_any(keys, signed, theirs) for theirs in presented]
        if not any(matches):
            raise SignatureError("signature_mismatch", "no webhook-signature entry matches")
        signed_at = datetime.fromtimestamp(int(sent), tz=UTC)
        if abs(now - signed_at) > TOLERANCE:
            raise SignatureError(
                "timestamp_stale", f"signed at {signed_at.isoformat()}, not within 5 minutes"
            )

    def parse(self, request: InboundRequest) -> VendorEvent:
        """The typed event; `webhook-id` is its id."""
        message_id = request.headers.get(ID_HEADER, "").strip()
        if not message_id:
            raise PayloadError("missing_webhook_id", "no webhook-id header")
        try:
            event = STANDARD_EVENT.validate_json(request.body)
        except ValidationError as error:
            raise PayloadError("invalid_payload", payloads.validation_detail(error)) from None
        identity = EventIdentity(
            provider_event_id=message_id,
            entity=f"{event.type}:{event.data.store_id}",
            entity_version=None,
            merchant_id=event.data.merchant_id,
            occurred_at=event.timestamp,
        )
        return VendorEvent(identity=identity, event_type=event.type, model=event)

    def to_canonical_commands(self, event: VendorEvent, mapping: MappingLookup) -> list[CanonicalCommand]:
        """`SetCounts`, `ApplyMovements` or `SetStoreStatus` for the event's store."""
        model = event.model
        if not isinstance(model, CountsEvent | MovementsEvent | StoreStatusEvent):
            return []
        merchant, vendor_store = model.data.merchant_id, model.data.store_id
        tenant = mapping.tenant(self.name, merchant)
        if tenant is None:
            raise MappingMissing("unmapped_merchant", merchant)
        store = mapping.store(self.name, merchant, vendor_store)
        if store is None:
            raise MappingMissing("unmapped_store", vendor_store)
        origin = Origin(self.name, event.identity, tenant, store)
        if isinstance(model, StoreStatusEvent):
            return [
                set_store_status(origin, STORE_STATES[model.data.state], model.data.reason, model.data.until)
            ]
        if isinstance(model, CountsEvent):
            return [set_counts(origin, self._count_lines(model, store, mapping))]
        return [apply_movements(origin, self._movement_lines(model, store, mapping))]

    def _count_lines(self, model: CountsEvent, store: str, mapping: MappingLookup) -> list[CountLine]:
        merchant = model.data.merchant_id
        return [
            CountLine(
                store_id=store,
                sku=self._sku(mapping, merchant, count.item_id),
                on_hand=count.on_hand,
                source_version=count.version,
                counted_at=count.counted_at or model.timestamp,
            )
            for count in model.data.counts
        ]

    def _movement_lines(
        self, model: MovementsEvent, store: str, mapping: MappingLookup
    ) -> list[MovementLine]:
        merchant = model.data.merchant_id
        return [
            MovementLine(
                store_id=store,
                sku=self._sku(mapping, merchant, movement.item_id),
                movement_type=MOVEMENT_TYPES[movement.type],
                delta=movement.delta,
                line=movement.movement_id,
                occurred_at=movement.occurred_at or model.timestamp,
                reference=movement.reference,
                # The partner's movement id is unique for the merchant: a movement sent again
                # under a new webhook-id must still move stock once.
                vendor_line_id=movement.movement_id,
            )
            for movement in model.data.movements
        ]

    def _sku(self, mapping: MappingLookup, merchant: str, item_id: str) -> str:
        sku = mapping.sku(self.name, merchant, item_id)
        if sku is None:
            raise MappingMissing("unmapped_sku", item_id)
        return sku


def _signature_headers(request: InboundRequest) -> tuple[str, str, list[bytes]]:
    """`webhook-id`, `webhook-timestamp` and the decoded `v1` signatures, or a SignatureError."""
    message_id = request.headers.get(ID_HEADER, "").strip()
    sent = request.headers.get(TIMESTAMP_HEADER, "").strip()
    entries = request.headers.get(SIGNATURE_HEADER, "").split()
    missing = [name for name, value in ((ID_HEADER, message_id), (TIMESTAMP_HEADER, sent)) if not value]
    if not entries:
        missing.append(SIGNATURE_HEADER)
    if missing:
        raise SignatureError("missing_signature", f"missing {', '.join(missing)}")
    # The spec forbids '.' in the id and timestamp: it would make the signed content ambiguous.
    if "." in message_id or not _UNIX_SECONDS.fullmatch(sent):
        raise SignatureError("malformed_signature", "webhook-id or webhook-timestamp is malformed")
    presented = [_decode_v1(entry) for entry in entries]
    # Other versions (v1a, asymmetric) are legal in the header but not a scheme posgate accepts.
    found = [signature for signature in presented if signature is not None]
    if not found:
        raise SignatureError("malformed_signature", "no well-formed v1 entry in webhook-signature")
    return message_id, sent, found


def _decode_v1(entry: str) -> bytes | None:
    version, _, encoded = entry.partition(",")
    if version != "v1":
        return None
    try:
        return signing.decode_base64_digest(encoded, SIGNATURE_HEADER)
    except SignatureError:
        return None


def _key(secret: bytes) -> bytes:
    """The HMAC key of a `whsec_<base64>` secret (the prefix is optional, as in the reference libraries)."""
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        # A configuration fault, not the request's: never an auth verdict, and never echoed.
        raise AdapterError("invalid_secret", "a configured secret is not whsec_<base64>") from None
