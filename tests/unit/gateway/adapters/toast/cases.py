"""Toast deliveries for the contract test, signed as Toast documents it.

https://doc.toasttab.com/doc/devguide/apiMessageSigning.html: Base64 HMAC-SHA256 of the
body followed by the message timestamp, keyed with the subscription's webhook secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from posgate.gateway.adapters.base import Topic
from posgate.gateway.adapters.toast import ToastAdapter
from tests.unit.gateway.adapters.contract_cases import VendorCases
from tests.unit.gateway.adapters.fake_mapping import FakeMappingLookup

RESTAURANT = "3325cc58-dc6e-4e21-85f9-7de275ffe820"
ITEM = "1e199622-ccbf-4ba8-8c37-111519dca13b"
SECRET = b"toast-test-webhook-secret"
NOW = datetime(2024, 5, 1, 9, 30, 5, tzinfo=UTC)


def sign(body: bytes, secret: bytes, at: datetime) -> Mapping[str, str]:
    """Toast's headers for `body`; `at` is unused, since Toast signs the body's own timestamp."""
    del at
    stamp = json.loads(body)["timestamp"]
    digest = hmac.new(secret, body + stamp.encode(), hashlib.sha256).digest()
    return {
        "Toast-Signature": base64.b64encode(digest).decode(),
        "Toast-Event-Type": json.loads(body)["eventType"],
        "Toast-Restaurant-External-ID": RESTAURANT,
        "Toast-Attempt-Number": "1",
    }


MAPPING = FakeMappingLookup(
    tenants={("toast", RESTAURANT): "tenant-bistro"},
    stores={("toast", RESTAURANT, RESTAURANT): "store-bistro-1"},
    skus={("toast", RESTAURANT, ITEM): "SKU-BURGER"},
)

CASES = VendorCases(
    adapter=ToastAdapter(),
    fixtures=Path(__file__).parent / "fixtures",
    valid=(
        "stock_out_of_stock.json",
        "stock_low_quantity.json",
        "stock_in_stock.json",
        "stock_in_stock_quantity.json",
        "menus_updated.json",
    ),
    malformed=("malformed_quantity_without_quantity.json", "malformed_stock_without_item.json"),
    secret=SECRET,
    rotated_out_secret=b"toast-previous-webhook-secret",
    signature_header="toast-signature",
    sign=sign,
    now=NOW,
    stale_now=None,
    mapping=MAPPING,
    topic=Topic.INVENTORY,
)
