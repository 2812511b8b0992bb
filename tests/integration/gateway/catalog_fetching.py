"""Square catalog fetches under test: the mappings, the signed webhook and the fetcher.

Shared by `test_square_catalog_fetch.py` and `test_square_catalog_fetch_failures.py`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from pydantic import SecretStr

from posgate.contracts import catalog
from posgate.gateway.adapters.square.catalog_api import SquareCatalogClient
from posgate.gateway.catalog_fetch import CatalogItems
from posgate.gateway.command_fetch import CommandFetcher
from posgate.gateway.mappings import MappingEntry
from posgate.gateway.pipeline import ingest
from posgate.gateway.tables import MappingKind
from tests.integration.gateway.conftest import load_mappings
from tests.unit.gateway.adapters.square.cases import CASES, LOCATION, MERCHANT, NOW, SECRET
from tests.unit.gateway.adapters.square.catalog_cases import LATTE_SMALL, SKUS

TOKEN = "EAAAl-sq-catalog-token-do-not-log"
TENANT = "tenant-cafe"
VERSION = "2024-05-14T17:51:27.000Z"
MERCHANT_ONLY = [
    MappingEntry("square", MERCHANT, MappingKind.TENANT, "", TENANT),
    MappingEntry("square", MERCHANT, MappingKind.STORE, LOCATION, "store-cafe-1"),
]
ITEMS = [MappingEntry("square", MERCHANT, MappingKind.SKU, vendor, sku) for vendor, sku in SKUS.items()]
WITHOUT_SMALL = [entry for entry in ITEMS if entry.vendor_id != LATTE_SMALL]


async def catalog_client(square) -> AsyncIterator[SquareCatalogClient]:
    """A catalog API client of the fake Square, with the merchant's token."""
    catalog_api = SquareCatalogClient(square[1], {MERCHANT: SecretStr(TOKEN)})
    yield catalog_api
    await catalog_api.close()


def fetcher(sessions, client, **options) -> CommandFetcher:
    return CommandFetcher(sessions, [CatalogItems(client)], **options)


def notification(event_id: str = "", updated_at: str = VERSION):
    """The recorded webhook, or one under another event id or for another catalog version."""
    document = json.loads(CASES.body("catalog_version_updated.json"))
    document["event_id"] = event_id or document["event_id"]
    document["data"]["object"]["catalog_version"]["updated_at"] = updated_at
    return CASES.request(json.dumps(document).encode())


async def catalog_updated(sessions, entries=(*MERCHANT_ONLY, *ITEMS), request=None) -> int:
    """Map the merchant, then ingest the signed webhook; the id of its UpsertItems."""
    await load_mappings(sessions, list(entries))
    result = await ingest(sessions, request or notification(), (SECRET,), NOW, tenant=TENANT)
    assert result.outcome == "accepted"
    [command_id] = result.command_ids
    return command_id


def upsert_of(row) -> catalog.pb.UpsertItemsRequest:
    return catalog.pb.UpsertItemsRequest.FromString(bytes(row.body))


def variant_skus(row) -> list[list[str]]:
    return [[variant.sku for variant in item.variants] for item in upsert_of(row).items]
