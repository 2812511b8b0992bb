"""Square's Catalog API, SearchCatalogObjects only: the I/O half of completing a catalog change.

A `catalog.version.updated` webhook says only when the seller's catalog changed. The
gateway's catalog fetch step (`posgate.gateway.catalog_fetch`) then asks Square for the items
changed since a time: `POST /v2/catalog/search` with
`{"object_types": ["ITEM"], "include_related_objects": false, "include_deleted_objects": true,
"begin_time": <RFC 3339>}`, following `cursor` from page to page until a page has none (needs
the `ITEMS_READ` permission). Tokens, headers and error classes:
`posgate.gateway.adapters.square.api`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from posgate.gateway.adapters.square.api import CATALOG_FETCH, INVALID, SquareApi

SEARCH_PATH = "/v2/catalog/search"
# A bound on one fetch: Square pages hold up to 1,000 objects, so this is far more than any
# seller changes between two catalog versions; a longer chain is a looping cursor.
MAX_PAGES = 500


class SquareCatalogClient(SquareApi):
    """Reads changed catalog items from Square with each merchant's own access token."""

    reasons = CATALOG_FETCH

    async def search_items(self, merchant_id: str, begin_time: datetime) -> list[Any]:
        """The decoded SearchCatalogObjects pages of ITEMs changed (or deleted) after `begin_time`.

        Raises:
            FetchError: No token (`square_token_missing`), refused (`square_catalog_fetch_refused`),
                Square unavailable or unreachable (`square_catalog_fetch_unavailable`, retryable),
                or an answer that is not a page, or a cursor chain without end
                (`square_catalog_fetch_invalid`).

        """
        pages: list[Any] = []
        cursor = ""
        while len(pages) < MAX_PAGES:
            page = await self._call(merchant_id, "POST", SEARCH_PATH, search_body(begin_time, cursor))
            if not isinstance(page, dict):
                raise self.error(INVALID, "SearchCatalogObjects answered something other than an object")
            pages.append(page)
            cursor = page.get("cursor") or ""
            if not isinstance(cursor, str):
                raise self.error(INVALID, "cursor is not a string")
            if not cursor:
                return pages
        raise self.error(INVALID, f"more than {MAX_PAGES} pages")


def search_body(begin_time: datetime, cursor: str = "") -> dict[str, object]:
    """The SearchCatalogObjects request for ITEMs changed after `begin_time`, from `cursor` on."""
    body: dict[str, object] = {
        "object_types": ["ITEM"],
        "include_related_objects": False,
        "include_deleted_objects": True,
        "begin_time": rfc3339(begin_time),
    }
    if cursor:
        body["cursor"] = cursor
    return body


def rfc3339(moment: datetime) -> str:
    """`2024-05-14T17:51:27.000Z`: UTC with milliseconds, as Square writes its own times."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
