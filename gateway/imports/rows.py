"""Validation of one import row and mapping of its vendor ids to canonical ids.

Row kinds (field `kind`):

- `count`: `store`, `sku`, `on_hand` (>= 0), and `version` (>= 0) or `counted_at` (ISO 8601
  with a zone); newer wins by version, else by time.
- `delta`: `store`, `sku`, `type` (`sale`, `return`, `receipt`, `transfer_in`,
  `transfer_out`, `shrink`, `adjustment`), `delta` (non-zero, with the type's sign), `key`
  (the seller's unique id of this stock change), optional `occurred_at`, `reference`.
- `product`: `sku`, `name`, `price` (integer minor units, >= 0), `currency` (ISO 4217),
  optional `variants` (NDJSON: SKUs or `{"sku", "name"}` objects; CSV: SKUs joined by `;`),
  optional `version`.

NDJSON values must have their JSON type (an integer is not a string); CSV cells are text and
are parsed. Every problem raises `RowError` with a stable reason code.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NamedTuple

from posgate.contracts import inventory
from posgate.gateway.adapters.base import MappingLookup

_CURRENCY = re.compile(r"^[A-Z]{3}$")
# Protobuf int64 bounds: a larger number would fail when the command is built.
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_Movement = inventory.pb.MovementType
# Movement type → (enum value, required sign of the delta: +1, -1, or 0 for either).
MOVEMENT_TYPES: dict[str, tuple[inventory.pb.MovementType.ValueType, int]] = {
    "sale": (_Movement.MOVEMENT_TYPE_SALE, -1),
    "return": (_Movement.MOVEMENT_TYPE_RETURN, 1),
    "receipt": (_Movement.MOVEMENT_TYPE_RECEIPT, 1),
    "transfer_in": (_Movement.MOVEMENT_TYPE_TRANSFER_IN, 1),
    "transfer_out": (_Movement.MOVEMENT_TYPE_TRANSFER_OUT, -1),
    "shrink": (_Movement.MOVEMENT_TYPE_SHRINK, -1),
    "adjustment": (_Movement.MOVEMENT_TYPE_ADJUSTMENT, 0),
}


class RowError(ValueError):
    """A row the import rejects; `reason` is a stable code, `detail` says what exactly."""

    def __init__(self, reason: str, detail: str = "") -> None:
        """Keep the code and the explanation apart."""
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class CountRow(NamedTuple):
    """An absolute count, canonical ids resolved."""

    store: str
    sku: str
    on_hand: int
    version: int
    counted_at: datetime | None


class DeltaRow(NamedTuple):
    """A stock movement, canonical ids resolved."""

    store: str
    sku: str
    movement_type: inventory.pb.MovementType.ValueType
    delta: int
    key: str
    occurred_at: datetime | None
    reference: str


class ProductRow(NamedTuple):
    """A catalogue item with its variants and price, canonical SKUs resolved."""

    sku: str
    name: str
    variants: tuple[tuple[str, str], ...]
    price: int
    currency: str
    version: int


ImportRow = CountRow | DeltaRow | ProductRow


class RowValidator:
    """Validates rows of one upload against one mapping snapshot."""

    def __init__(self, provider: str, merchant_id: str, mapping: MappingLookup, *, typed: bool) -> None:
        """`typed` is True for NDJSON (JSON types enforced), False for CSV (text parsed)."""
        self._provider = provider
        self._merchant = merchant_id
        self._mapping = mapping
        self._typed = typed
        # Lookups remembered per upload (unmapped ones as ""): one dict probe per row.
        self._stores: dict[str, str] = {}
        self._skus: dict[str, str] = {}
        self._kinds: dict[str, Callable[[dict[str, Any]], ImportRow]] = {
            "count": self._count,
            "delta": self._delta,
            "product": self._product,
        }

    def validate(self, fields: dict[str, Any]) -> ImportRow:
        """The row as a canonical value; raises `RowError`."""
        kind = fields.get("kind")
        if kind is None:
            raise RowError("missing_field", "kind")
        parse = self._kinds.get(kind) if isinstance(kind, str) else None
        if parse is None:
            raise RowError("unknown_kind", f"kind must be count, delta or product, not {kind!r}")
        return parse(fields)

    def _count(self, fields: dict[str, Any]) -> CountRow:
        on_hand = self._int(fields, "on_hand")
        if on_hand < 0:
            raise RowError("negative_count", f"on_hand {on_hand} < 0")
        version = self._int(fields, "version", default=0)
        counted_at = self._time(fields, "counted_at")
        if version < 0:
            raise RowError("invalid_value", f"version {version} < 0")
        if not version and counted_at is None and "version" not in fields:
            raise RowError("missing_field", "version or counted_at")
        store = self._store(self._str(fields, "store"))
        return CountRow(store, self._sku(self._str(fields, "sku")), on_hand, version, counted_at)

    def _delta(self, fields: dict[str, Any]) -> DeltaRow:
        name = self._str(fields, "type")
        movement = MOVEMENT_TYPES.get(name)
        if movement is None:
            raise RowError("invalid_value", f"unknown movement type {name!r}")
        delta = self._int(fields, "delta")
        kind, sign = movement
        if delta == 0 or (sign and (delta > 0) != (sign > 0)):
            raise RowError("bad_sign", f"a {name} needs a {'negative' if sign < 0 else 'positive'} delta")
        key = self._str(fields, "key")
        occurred_at = self._time(fields, "occurred_at")
        reference = self._str(fields, "reference", required=False)
        store = self._store(self._str(fields, "store"))
        sku = self._sku(self._str(fields, "sku"))
        return DeltaRow(store, sku, kind, delta, key, occurred_at, reference)

    def _product(self, fields: dict[str, Any]) -> ProductRow:
        name = self._str(fields, "name")
        price = self._int(fields, "price")
        if price < 0:
            raise RowError("invalid_value", f"price {price} < 0")
        currency = self._str(fields, "currency")
        if not _CURRENCY.match(currency):
            raise RowError("invalid_value", f"not an ISO 4217 currency: {currency!r}")
        version = self._int(fields, "version", default=0)
        variants = tuple((self._sku(sku), label) for sku, label in self._variants(fields.get("variants")))
        return ProductRow(self._sku(self._str(fields, "sku")), name, variants, price, currency, version)

    def _variants(self, value: Any) -> list[tuple[str, str]]:
        if value is None:
            return []
        if not self._typed:
            return [(sku.strip(), "") for sku in str(value).split(";") if sku.strip()]
        if not isinstance(value, list):
            raise RowError("wrong_type", "variants must be a list")
        found: list[tuple[str, str]] = []
        for entry in value:
            if isinstance(entry, str) and entry:
                found.append((entry, ""))
            elif isinstance(entry, dict) and isinstance(entry.get("sku"), str) and entry["sku"]:
                label = entry.get("name", "")
                found.append((entry["sku"], label if isinstance(label, str) else ""))
            else:
                raise RowError("wrong_type", "a variant is a SKU or an object with a sku")
        return found

    def _int(self, fields: dict[str, Any], name: str, *, default: int | None = None) -> int:
        value = fields.get(name)
        if type(value) is int and _INT64_MIN <= value <= _INT64_MAX:
            return value
        if value is None:
            if default is None:
                raise RowError("missing_field", name)
            return default
        if type(value) is int:
            raise RowError("invalid_value", f"{name} is outside the 64-bit range")
        if self._typed:
            raise RowError("wrong_type", f"{name} must be an integer")
        try:
            number = int(value)
        except ValueError:
            raise RowError("wrong_type", f"{name} must be an integer") from None
        if not _INT64_MIN <= number <= _INT64_MAX:
            raise RowError("invalid_value", f"{name} is outside the 64-bit range")
        return number

    def _str(self, fields: dict[str, Any], name: str, *, required: bool = True) -> str:
        value = fields.get(name)
        if type(value) is str and value:
            return value
        if value is None or value == "":
            if required:
                raise RowError("missing_field", name)
            return ""
        raise RowError("wrong_type", f"{name} must be a string")

    def _time(self, fields: dict[str, Any], name: str) -> datetime | None:
        if name not in fields:
            return None
        text = self._str(fields, name, required=False)
        if not text:
            return None
        try:
            moment = datetime.fromisoformat(text)
            if moment.utcoffset() is None:
                raise RowError("invalid_timestamp", f"{name} needs a time zone: {text!r}")
            return moment.astimezone(UTC)
        except (ValueError, OverflowError) as error:
            if isinstance(error, RowError):
                raise
            raise RowError("invalid_timestamp", f"{name} is not an ISO 8601 time: {text!r}") from None

    def _store(self, vendor_id: str) -> str:
        canonical = self._stores.get(vendor_id)
        if canonical is None:
            canonical = self._stores[vendor_id] = (
                self._mapping.store(self._provider, self._merchant, vendor_id) or ""
            )
        if not canonical:
            raise RowError("unmapped_store", vendor_id)
        return canonical

    def _sku(self, vendor_id: str) -> str:
        canonical = self._skus.get(vendor_id)
        if canonical is None:
            canonical = self._skus[vendor_id] = (
                self._mapping.sku(self._provider, self._merchant, vendor_id) or ""
            )
        if not canonical:
            raise RowError("unmapped_sku", vendor_id)
        return canonical
