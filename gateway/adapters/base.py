"""What every vendor adapter implements, and the values it works with.

An adapter is pure: no I/O, no clock reads (the caller passes `now`), no database. The
gateway pipeline authenticates with `verify_signature`, parses with `parse`, resolves vendor
ids through a `MappingLookup` snapshot and turns the vendor event into canonical commands
with `to_canonical_commands`. Adding a vendor is a folder with the same files as the others
(`adapter.py`, `models.py`) and one line in `registry.py`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from google.protobuf.message import Message
from pydantic import BaseModel


class Topic:
    """The webhook endpoints a vendor can post to (`.../webhooks/{topic}`)."""

    ORDERS = "orders"
    INVENTORY = "inventory"
    MENU = "menu"
    STORE_STATUS = "store-status"
    STOCK = "stock"  # ERP stock feeds


POS_TOPICS = frozenset({Topic.ORDERS, Topic.INVENTORY, Topic.MENU, Topic.STORE_STATUS})
"""What `POST /v1/integrations/pos/{provider}/webhooks/{topic}` takes."""
ERP_TOPICS = frozenset({Topic.STOCK})
"""What `POST /v1/integrations/erp/{provider}/webhooks/stock` takes."""


@dataclass(frozen=True, slots=True)
class InboundRequest:
    """One webhook delivery exactly as received.

    Attributes:
        provider: Registry name of the vendor (`square`).
        topic: Endpoint topic (`Topic.*`).
        url: The full notification URL the vendor posted to (some schemes sign it).
        headers: Header names lower-cased.
        body: The raw body, byte for byte (signatures are computed over it).
        received_at: When the gateway received it (UTC).

    """

    provider: str
    topic: str
    url: str
    headers: Mapping[str, str]
    body: bytes
    received_at: datetime


class AdapterError(Exception):
    """A delivery the adapter refuses; `failure_class` and `reason` are stable codes."""

    failure_class = "processing"

    def __init__(self, reason: str, detail: str = "") -> None:
        """`reason` is a stable snake_case code; `detail` a human explanation without secrets."""
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class SignatureError(AdapterError):
    """Authentication failed: missing, malformed or wrong signature, or a stale timestamp."""

    failure_class = "auth"


class PayloadError(AdapterError):
    """The body is not a payload of the vendor's documented shape."""

    failure_class = "validation"


class MappingMissing(AdapterError):
    """A vendor id has no canonical id yet (store, SKU, merchant)."""

    failure_class = "mapping"


@dataclass(frozen=True, slots=True)
class EventIdentity:
    """What de-duplicates a delivery: the vendor's event id, else entity version, else a hash.

    Attributes:
        provider_event_id: The vendor's id of the event or delivery, when it has one.
        entity: What the event is about (`inventory_count:<catalog object id>`, `order:<id>`).
        entity_version: The vendor's version of the entity (revision, updated-at), if any.
        merchant_id: The vendor's merchant / account / location owner id.
        occurred_at: When the vendor says it happened.

    """

    provider_event_id: str | None
    entity: str
    entity_version: str | None
    merchant_id: str
    occurred_at: datetime | None


@dataclass(frozen=True, slots=True)
class VendorEvent:
    """A parsed delivery: its identity, the vendor's event type and the typed payload.

    `model` is None for event types posgate accepts and records but has nothing to do with.
    """

    identity: EventIdentity
    event_type: str
    model: BaseModel | None


class MappingLookup(Protocol):
    """Vendor id → canonical id, from a snapshot the pipeline loaded before calling the adapter."""

    def tenant(self, provider: str, merchant_id: str) -> str | None:
        """The tenant a vendor merchant / account belongs to."""
        ...

    def store(self, provider: str, merchant_id: str, vendor_store_id: str) -> str | None:
        """The canonical store of a vendor location / store id."""
        ...

    def sku(self, provider: str, merchant_id: str, vendor_item_id: str) -> str | None:
        """The canonical SKU of a vendor item / variant / catalog object id."""
        ...


class Fetch:
    """What a command lacks that the vendor's API supplies (`CanonicalCommand.fetch`)."""

    # A SubmitOrder named by an order webhook: its lines and totals (Square RetrieveOrder).
    ORDER_LINES = "order_lines"
    # An UpsertItems cued by a catalog version: the items that changed (Square SearchCatalogObjects).
    CATALOG_ITEMS = "catalog_items"


class FetchError(Exception):
    """A vendor API call that did not answer what a fetch needs; `retryable` says whether to try again."""

    def __init__(self, reason: str, detail: str, *, retryable: bool) -> None:
        """`reason` is a stable snake_case code; `detail` names no secret."""
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.retryable = retryable


@dataclass(frozen=True, slots=True)
class CanonicalCommand:
    """One call to an internal service, ready to be stored and dispatched.

    Attributes:
        target: Full gRPC method (`posgate.inventory.v1.InventoryService/ApplyMovements`).
        message: The request message, idempotency key and source filled in.
        idempotency_key: The command's key (also inside `message`).
        tenant_id: Canonical tenant.
        store_id: Canonical store, when the command is about one.
        warnings: Data the adapter could not carry over faithfully (`posgate.gateway.profiles`).
        fetch: What the webhook lacked (`Fetch.*`), or '' when the command is complete. A
            command to fetch is stored `awaiting_fetch` until the gateway's fetcher
            (`posgate.gateway.command_fetch`) completes it from the vendor's API.

    """

    target: str
    message: Message
    idempotency_key: str
    tenant_id: str
    store_id: str = ""
    warnings: tuple[str, ...] = field(default=())
    fetch: str = ""


class Adapter(Protocol):
    """A vendor's webhook dialect."""

    name: str
    topics: frozenset[str]

    def verify_signature(self, request: InboundRequest, secrets: Sequence[bytes], now: datetime) -> None:
        """Raise `SignatureError` unless one of `secrets` signed the request (and it is fresh)."""
        ...

    def parse(self, request: InboundRequest) -> VendorEvent:
        """The typed vendor event; raise `PayloadError` for a malformed body."""
        ...

    def to_canonical_commands(self, event: VendorEvent, mapping: MappingLookup) -> list[CanonicalCommand]:
        """Canonical commands (possibly none); raise `MappingMissing` for unmapped ids."""
        ...
