"""Zettle deliveries for the contract test, signed as the Pusher API documents it.

https://github.com/iZettle/api-documentation/blob/master/pusher-api/user-guides/create-subscriptions.md
(step 4): hex HMAC-SHA256 of `<timestamp>.<payload>`, keyed with the subscription's
`signingKey`. The fixtures are Zettle's documented example messages.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

from posgate.gateway.adapters.base import Topic
from posgate.gateway.adapters.zettle import ZettleAdapter
from tests.unit.gateway.adapters.contract_cases import VendorCases, change_last_digit
from tests.unit.gateway.adapters.fake_mapping import FakeMappingLookup

ORGANIZATION = "d3f03ffa-4a18-4282-bbfa-efd5f642ffb7"
STORE_LOCATION = "fd4a39a0-e2ef-11e6-ba64-85247ae2a737"
SOLD_LOCATION = "fd4a87c0-e2ef-11e6-bfe3-78ba29c12242"
WATCH = "e4cc8750-a110-11eb-adc0-ffd446d76f99"
WATCH_35 = "4745e110-a111-11eb-adc0-ffd446d76f99"
WATCH_40 = "49bcd480-a111-11eb-adc0-ffd446d76f99"
TEST_PRODUCT = "4a98a671-7c2e-11eb-bb38-e398536ff6aa"
WHISKEY_SMALL = "018ff152-987d-11eb-8147-faacf6e11cc8"
# Shaped like a Pusher `signingKey`.
SECRET = b"zLzClQLQN8yfH8aEjONeXzgJRAHR0zpD7RonFCpizujCUCectBlln0vFArTbLPYa"
NOW = datetime(2021, 4, 19, 13, 20, tzinfo=UTC)


def sign(body: bytes, secret: bytes, at: datetime) -> Mapping[str, str]:
    """Zettle's header for `body`; `at` is unused, since the body carries the signed timestamp."""
    del at
    raw = json.loads(body)
    payload_to_sign = f"{raw['timestamp']}.{raw['payload']}"
    signature = hmac.new(secret, msg=payload_to_sign.encode("utf-8"), digestmod=hashlib.sha256).hexdigest()
    return {"X-iZettle-Signature": signature, "Content-Type": "application/json"}


def tamper_payload(body: bytes) -> bytes:
    """The body with a digit inside the signed payload changed (a balance, a quantity)."""
    raw = json.loads(body)
    raw["payload"] = change_last_digit(raw["payload"].encode()).decode()
    return json.dumps(raw).encode()


MAPPING = FakeMappingLookup(
    tenants={("zettle", ORGANIZATION): "tenant-gadgets"},
    stores={("zettle", ORGANIZATION, STORE_LOCATION): "store-edinburgh"},
    skus={
        ("zettle", ORGANIZATION, WATCH): "WATCH",
        ("zettle", ORGANIZATION, WATCH_35): "WATCH-35",
        ("zettle", ORGANIZATION, WATCH_40): "WATCH-40",
        ("zettle", ORGANIZATION, TEST_PRODUCT): "TEST-987",
        ("zettle", ORGANIZATION, WHISKEY_SMALL): "WHISKEY-50",
    },
)

CASES = VendorCases(
    adapter=ZettleAdapter(),
    fixtures=Path(__file__).parent / "fixtures",
    valid=("inventory_balance_changed.json", "purchase_created.json", "product_created.json"),
    malformed=("malformed_payload_not_json.json", "malformed_balance_without_after.json"),
    secret=SECRET,
    rotated_out_secret=b"wg1HcgcQSUY0kdTr5UllLtDWXRINszcVJS7942gmUuwoxasbUN0o6fyQtYDwuqa1",
    signature_header="x-izettle-signature",
    sign=sign,
    now=NOW,
    stale_now=NOW + timedelta(days=2),
    mapping=MAPPING,
    topic=Topic.INVENTORY,
    tamper=tamper_payload,
)
