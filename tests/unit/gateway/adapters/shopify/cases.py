"""Shopify deliveries for the contract test, signed as Shopify documents it.

https://shopify.dev/docs/apps/build/webhooks/subscribe/https: `X-Shopify-Hmac-Sha256` is
the Base64 HMAC-SHA256 of the raw body keyed with the app's client secret. The topic, shop,
webhook id and trigger time travel in (unsigned) headers; a body does not name its topic,
so each fixture's topic is listed here.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from posgate.gateway.adapters.base import Topic
from posgate.gateway.adapters.shopify import ShopifyAdapter
from posgate.gateway.adapters.shopify.adapter import signature
from tests.unit.gateway.adapters.contract_cases import VendorCases
from tests.unit.gateway.adapters.fake_mapping import FakeMappingLookup

SHOP = "posgate-roastery.myshopify.com"
LOCATION = "655441491"
BIG_ID = "9007199254740993"  # 2^53 + 1: a float would turn it into ...992
INVENTORY_ITEM = f"gid://shopify/InventoryItem/{BIG_ID}"
BEANS = f"gid://shopify/ProductVariant/{BIG_ID}"
GRINDER = "gid://shopify/ProductVariant/808950810"
BEANS_MEDIUM = "gid://shopify/ProductVariant/9007199254740997"
PRODUCT = "gid://shopify/Product/788032119674292922"
SECRET = b"shopify-test-client-secret"
NOW = datetime(2024, 5, 16, 15, 0, tzinfo=UTC)
FIXTURES = Path(__file__).parent / "fixtures"
TOPICS = {
    "inventory_levels_update.json": "inventory_levels/update",
    "orders_create.json": "orders/create",
    "orders_cancelled.json": "orders/cancelled",
    "refunds_create.json": "refunds/create",
    "products_create.json": "products/create",
    "customers_create.json": "customers/create",
    "malformed_orders_create_price_not_decimal.json": "orders/create",
    "malformed_inventory_levels_update_without_location.json": "inventory_levels/update",
    "malformed_refunds_create_order_id_as_float.json": "refunds/create",
}
_TOPIC_OF_BODY = {(FIXTURES / name).read_bytes(): topic for name, topic in TOPICS.items()}


def headers(body: bytes, secret: bytes, at: datetime, topic: str, webhook_id: str) -> dict[str, str]:
    """The headers Shopify sends with `body`."""
    return {
        "X-Shopify-Hmac-Sha256": signature(secret, body),
        "X-Shopify-Topic": topic,
        "X-Shopify-Shop-Domain": SHOP,
        "X-Shopify-Webhook-Id": webhook_id,
        "X-Shopify-Event-Id": "98880550-7158-44d4-b7cd-2c97c8a091b5",
        "X-Shopify-Triggered-At": at.isoformat().replace("+00:00", "Z"),
        "X-Shopify-API-Version": "2024-04",
        "Content-Type": "application/json",
    }


def sign(body: bytes, secret: bytes, at: datetime) -> Mapping[str, str]:
    """Shopify's headers for a recorded body (an unknown body is posted as `orders/create`)."""
    topic = _TOPIC_OF_BODY.get(body, "orders/create")
    return headers(body, secret, at, topic, "b54557e4-8a5f-4bf7-9d70-bcd043a1e2f3")


MAPPING = FakeMappingLookup(
    tenants={("shopify", SHOP): "tenant-roastery"},
    stores={("shopify", SHOP, LOCATION): "store-roastery-berlin"},
    skus={
        ("shopify", SHOP, INVENTORY_ITEM): "SKU-BEANS-DARK",
        ("shopify", SHOP, BEANS): "SKU-BEANS-DARK",
        ("shopify", SHOP, BEANS_MEDIUM): "SKU-BEANS-MEDIUM",
        ("shopify", SHOP, GRINDER): "SKU-GRINDER",
        ("shopify", SHOP, PRODUCT): "SKU-BEANS",
    },
)

CASES = VendorCases(
    adapter=ShopifyAdapter(),
    fixtures=FIXTURES,
    valid=(
        "inventory_levels_update.json",
        "orders_create.json",
        "orders_cancelled.json",
        "refunds_create.json",
        "products_create.json",
        "customers_create.json",
    ),
    malformed=(
        "malformed_orders_create_price_not_decimal.json",
        "malformed_inventory_levels_update_without_location.json",
        "malformed_refunds_create_order_id_as_float.json",
    ),
    secret=SECRET,
    rotated_out_secret=b"shopify-previous-client-secret",
    signature_header="x-shopify-hmac-sha256",
    sign=sign,
    now=NOW,
    stale_now=datetime(2024, 5, 19, 0, 0, tzinfo=UTC),
    mapping=MAPPING,
    topic=Topic.ORDERS,
)
