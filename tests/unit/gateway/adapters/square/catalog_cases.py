"""Recorded SearchCatalogObjects pages and a mapping under which their items are mapped.

Page 1 holds the item Latte with two live variations (Large is the variation the other
fixtures name) and a deleted one, and a cursor; page 2, the last, holds the beans item and a
deleted item (Cold brew) that was never mapped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.unit.gateway.adapters.fake_mapping import FakeMappingLookup
from tests.unit.gateway.adapters.square.cases import MERCHANT, VARIATION

FIXTURES = Path(__file__).parent / "fixtures"
LATTE = "W62UWFY35CWMYGVWK6TWJDNI"
LATTE_LARGE = VARIATION
LATTE_SMALL = "AII5JKXZJ2RJLSFWUY6PBQBE"
LATTE_MEDIUM_DELETED = "2TZFAOHWGG7PAK2QEXWYPZSP"
BEANS = "BJNQCF2FJ6S6UIDT65ABHLRX"
BEANS_250 = "GFOPEJV3TE6K4RBXUBNN7HQE"
COLD_BREW_DELETED = "LMMJGZK5TVIQLGSVSCCVGZU5"
CURSOR = "CAASIwoSCgYxMjM0NTYSCAoGMTIzNDU2EgIIAiIEbmV4dA"
# Square id → canonical SKU for every live item and variation of the two pages.
SKUS = {
    LATTE: "LATTE",
    LATTE_LARGE: "SKU-LATTE",
    LATTE_SMALL: "SKU-LATTE-S",
    BEANS: "BEANS",
    BEANS_250: "SKU-BEANS-250",
}
MAPPING = FakeMappingLookup(
    tenants={("square", MERCHANT): "tenant-cafe"},
    skus={("square", MERCHANT, vendor_id): sku for vendor_id, sku in SKUS.items()},
)


def page(number: int) -> Any:
    """The decoded SearchCatalogObjects page `number` (1 or 2)."""
    return json.loads((FIXTURES / f"search_catalog_objects_page{number}.json").read_text())


def pages() -> list[Any]:
    """Both pages, in the order Square answers them."""
    return [page(1), page(2)]
