"""Square catalog ITEMs as SearchCatalogObjects returns them, turned into canonical items.

A `catalog.version.updated` webhook carries no catalog objects, so the adapter's UpsertItems
is stored without items, `awaiting_fetch`, until the catalog fetch step
(`posgate.gateway.catalog_fetch`) has read the changed items; `complete_upsert` then fills them
in. It is pure like the adapter: the mapping snapshot comes in, the completed request goes out.

One Square ITEM becomes one canonical `Item`; each of its ITEM_VARIATIONs a `Variant`. Both
ids go through the merchant's SKU mappings, as the other adapters map a product and its
variants: the variation id is the one inventory counts and order lines name, the item id
gives the item its own SKU. What the canonical contract cannot carry is left out: variation
prices (a price list is a command of its own), `present_at_all_locations` (items are not
per store), and the seller's free-text `sku`. A deleted ITEM becomes an inactive item
(`active` false, no variants); one that was never mapped never reached the canonical catalog
and is skipped rather than held for review. Deleted variations of a live item are dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from posgate.contracts import catalog
from posgate.gateway.adapters import commands, payloads
from posgate.gateway.adapters.base import MappingLookup, MappingMissing, PayloadError
from posgate.gateway.adapters.square.models import (
    CatalogItemVariation,
    CatalogObject,
    SearchCatalogObjectsResponse,
)

PROVIDER = "square"
ITEM = "ITEM"


def parse_pages(pages: Sequence[Any]) -> list[CatalogObject]:
    """The ITEMs of SearchCatalogObjects pages (decoded JSON): each id once, at its newest version.

    Raises:
        PayloadError: A page is not a SearchCatalogObjects response (`invalid_catalog_page`).

    """
    newest: dict[str, CatalogObject] = {}
    for page in pages:
        try:
            objects = SearchCatalogObjectsResponse.model_validate(page).objects
        except ValidationError as error:
            detail = payloads.validation_detail(error, most=5)
            raise PayloadError("invalid_catalog_page", detail) from error
        for found in objects:
            seen = newest.get(found.id)
            if found.type == ITEM and (seen is None or found.version > seen.version):
                newest[found.id] = found
    return list(newest.values())


def complete_upsert(
    request: catalog.pb.UpsertItemsRequest,
    objects: Sequence[CatalogObject],
    mapping: MappingLookup,
    merchant_id: str,
) -> tuple[catalog.pb.UpsertItemsRequest, list[MappingMissing]]:
    """A copy of the webhook's `request` with one item per fetched ITEM that maps, for its tenant.

    Also returns why each ITEM left out could not be mapped (a live item or one of its
    variations without a SKU mapping: `unmapped_sku`), in the order fetched.
    """
    completed = catalog.pb.UpsertItemsRequest()
    completed.CopyFrom(request)
    del completed.items[:]
    held: list[MappingMissing] = []
    for found in objects:
        try:
            item = canonical_item(found, mapping, merchant_id)
        except MappingMissing as missing:
            held.append(missing)
            continue
        if item is not None:
            item.tenant_id = request.meta.source.tenant_id
            completed.items.append(item)
    return completed, held


def canonical_item(found: CatalogObject, mapping: MappingLookup, merchant_id: str) -> catalog.pb.Item | None:
    """The canonical item of one Square ITEM; None for a deleted one that was never mapped.

    Raises:
        MappingMissing: A live item or variation has no SKU mapping (`unmapped_sku`).

    """
    data = found.item_data
    name = data.name if data is not None else ""
    description = (data.description or data.description_plaintext) if data is not None else ""
    if found.is_deleted:
        sku = mapping.sku(PROVIDER, merchant_id, found.id)
        if sku is None:
            return None
        return catalog.pb.Item(
            sku=sku, name=name, description=description, active=False, version=found.version
        )
    variations = data.variations if data is not None else []
    return catalog.pb.Item(
        sku=commands.require_sku(mapping, PROVIDER, merchant_id, found.id),
        name=name,
        description=description,
        variants=[_variant(v, mapping, merchant_id) for v in variations if not v.is_deleted],
        active=True,
        version=found.version,
    )


def _variant(variation: CatalogItemVariation, mapping: MappingLookup, merchant_id: str) -> catalog.pb.Variant:
    return catalog.pb.Variant(
        variant_id=variation.id,
        sku=commands.require_sku(mapping, PROVIDER, merchant_id, variation.id),
        name=variation.item_variation_data.name,
    )
