"""Zettle events → canonical commands, with every Zettle id resolved through the mapping.

Zettle keeps stock per product variant and inventory location, so a variant UUID maps to a
SKU and a location UUID (the organisation's store location) to a store.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from posgate.contracts import catalog, inventory
from posgate.gateway.adapters.base import (
    CanonicalCommand,
    EventIdentity,
    MappingLookup,
    MappingMissing,
    PayloadError,
)
from posgate.gateway.adapters.commands import (
    CountLine,
    MovementLine,
    Origin,
    apply_movements,
    set_counts,
    upsert_items,
)
from posgate.gateway.adapters.zettle.models import (
    InventoryBalanceChanged,
    ProductCreated,
    ProductVariant,
    PurchaseCreated,
    PurchaseLine,
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def balance_commands(
    provider: str,
    identity: EventIdentity,
    tenant: str,
    event: InventoryBalanceChanged,
    mapping: MappingLookup,
) -> list[CanonicalCommand]:
    """One `SetCounts` per store from the balances after the change, versioned by its time."""
    organization = identity.merchant_id
    lines: dict[str, list[CountLine]] = defaultdict(list)
    warnings: list[str] = []
    changed_at = event.updated.timestamp
    for entry in event.balance_after:
        store = _store(provider, organization, entry.location_uuid, mapping)
        # A count rounded down never promises stock the store lacks.
        on_hand = math.floor(entry.balance)
        if on_hand != entry.balance:
            warnings.append(
                f"balance {entry.balance} of variant {entry.variant_uuid} rounded down to {on_hand}"
            )
        lines[store].append(
            CountLine(
                store_id=store,
                sku=_sku(provider, organization, entry.variant_uuid, mapping),
                on_hand=on_hand,
                source_version=_millis(changed_at),
                counted_at=changed_at,
            )
        )
    return [
        replace(set_counts(Origin(provider, identity, tenant, store), store_lines), warnings=tuple(warnings))
        for store, store_lines in lines.items()
    ]


def purchase_commands(
    provider: str, identity: EventIdentity, tenant: str, event: PurchaseCreated, mapping: MappingLookup
) -> list[CanonicalCommand]:
    """One `ApplyMovements` per store: a SALE per sold line (a RETURN per refunded one).

    The register has already sold the goods, so these are movements, not reservations.
    Lines without a variant (custom amounts) or without an inventory location (products whose
    stock Zettle does not track) move no stock; they are named in the command's warnings.
    """
    organization = identity.merchant_id
    lines: dict[str, list[MovementLine]] = defaultdict(list)
    warnings: list[str] = []
    for line in event.products:
        movement = _movement(provider, organization, event, line, mapping)
        if isinstance(movement, str):
            warnings.append(movement)
        elif movement is not None:
            lines[movement.store_id].append(movement)
    return [
        replace(
            apply_movements(Origin(provider, identity, tenant, store), store_lines), warnings=tuple(warnings)
        )
        for store, store_lines in lines.items()
    ]


def product_commands(
    provider: str, identity: EventIdentity, tenant: str, event: ProductCreated, mapping: MappingLookup
) -> list[CanonicalCommand]:
    """One `UpsertItems` with the product as an item and its variants, all by mapped SKU."""
    organization = identity.merchant_id
    item = catalog.pb.Item(
        sku=_sku(provider, organization, event.uuid, mapping),
        name=event.name,
        description=event.description or "",
        category=event.category.name if event.category else "",
        variants=[_variant(provider, organization, variant, mapping) for variant in event.variants],
        active=True,
        version=_millis(identity.occurred_at) if identity.occurred_at else 0,
    )
    return [upsert_items(Origin(provider, identity, tenant), [item])]


def _movement(
    provider: str, organization: str, event: PurchaseCreated, line: PurchaseLine, mapping: MappingLookup
) -> MovementLine | str | None:
    """The line's movement, a warning when it moves no stock, or None for a zero quantity."""
    if not line.variant_uuid:
        return f"line {line.id} has no product variant: no stock moved"
    # Zettle marks a refund either with `refund` or with negative quantities; either way the
    # goods come back, into the location they are moved to.
    returned = event.refund or line.quantity < 0
    location = line.to_location_uuid if returned else line.from_location_uuid
    if not location:
        return f"line {line.id} has no inventory location: stock not tracked"
    units = _whole(abs(line.quantity), line.id)
    if units == 0:
        return None
    return MovementLine(
        store_id=_store(provider, organization, location, mapping),
        sku=_sku(provider, organization, line.variant_uuid, mapping),
        movement_type=inventory.pb.MOVEMENT_TYPE_RETURN if returned else inventory.pb.MOVEMENT_TYPE_SALE,
        delta=units if returned else -units,
        line=line.id,
        occurred_at=event.created,
        reference=event.purchase_uuid,
    )


def _variant(
    provider: str, organization: str, variant: ProductVariant, mapping: MappingLookup
) -> catalog.pb.Variant:
    return catalog.pb.Variant(
        variant_id=variant.uuid,
        sku=_sku(provider, organization, variant.uuid, mapping),
        name=variant.name,
        attributes={option.name: option.value for option in variant.options},
        barcodes=_present([variant.barcode]),
    )


def _whole(quantity: Decimal, line_id: str) -> int:
    # A movement is in whole units of the item; a weighed sale cannot be rounded either way
    # without losing or inventing stock, so it is refused (and kept for replay).
    if quantity != quantity.to_integral_value():
        raise PayloadError("fractional_quantity", f"line {line_id} sold {quantity}, not whole units")
    return int(quantity)


def _store(provider: str, organization: str, location: str, mapping: MappingLookup) -> str:
    store = mapping.store(provider, organization, location)
    if store is None:
        raise MappingMissing("unmapped_store", location)
    return store


def _sku(provider: str, organization: str, vendor_id: str, mapping: MappingLookup) -> str:
    sku = mapping.sku(provider, organization, vendor_id)
    if sku is None:
        raise MappingMissing("unmapped_sku", vendor_id)
    return sku


def _present(values: Iterable[str | None]) -> list[str]:
    return [value for value in values if value]


def _millis(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(milliseconds=1)
