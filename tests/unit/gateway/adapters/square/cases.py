"""Square deliveries for the contract test, signed as Square documents it.

https://developer.squareup.com/docs/webhooks/step3validate: `x-square-hmacsha256-signature`
is the Base64 HMAC-SHA256 of the notification URL followed by the raw body, keyed with the
subscription's signature key. The time Square signs is the body's own `created_at`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from posgate.gateway.adapters.base import Topic
from posgate.gateway.adapters.square import SquareAdapter
from posgate.gateway.adapters.square.adapter import signature
from tests.unit.gateway.adapters.contract_cases import VendorCases
from tests.unit.gateway.adapters.fake_mapping import FakeMappingLookup

MERCHANT = "6SSW7HV8K2ST5"
LOCATION = "EF6D9SACKWBKZ"
VARIATION = "6F4K33KPNUVDWKZ43KUIFH6K"
SECRET = b"square-test-signature-key"
TOPIC = Topic.ORDERS
# The URL registered with Square; `VendorCases.request` posts to the same one.
URL = f"https://gateway.example.com/webhooks/square/{TOPIC}"
NOW = datetime(2024, 5, 15, 0, 0, tzinfo=UTC)


def sign(body: bytes, secret: bytes, at: datetime) -> Mapping[str, str]:
    """Square's headers for `body`; `at` is unused, since Square signs the body's `created_at`."""
    del at
    return {"x-square-hmacsha256-signature": signature(secret, URL, body), "content-type": "application/json"}


MAPPING = FakeMappingLookup(
    tenants={("square", MERCHANT): "tenant-cafe"},
    stores={("square", MERCHANT, LOCATION): "store-cafe-1"},
    skus={("square", MERCHANT, VARIATION): "SKU-LATTE"},
)

CASES = VendorCases(
    adapter=SquareAdapter(),
    fixtures=Path(__file__).parent / "fixtures",
    valid=(
        "inventory_count_updated.json",
        "order_created.json",
        "order_updated_completed.json",
        "order_updated_canceled.json",
        "refund_updated.json",
        "catalog_version_updated.json",
        "customer_created.json",
    ),
    malformed=(
        "malformed_order_created_without_order_id.json",
        "malformed_inventory_count_without_location.json",
        "malformed_envelope_without_event_id.json",
    ),
    secret=SECRET,
    rotated_out_secret=b"square-previous-signature-key",
    signature_header="x-square-hmacsha256-signature",
    sign=sign,
    now=NOW,
    stale_now=datetime(2024, 5, 17, 0, 0, tzinfo=UTC),
    mapping=MAPPING,
    topic=TOPIC,
)
