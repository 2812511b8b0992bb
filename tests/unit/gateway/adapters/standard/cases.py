"""Deliveries of posgate's canonical webhook, signed per Standard Webhooks.

https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md:
`webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, keyed with the
Base64-decoded part of a `whsec_` secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

from posgate.gateway.adapters.base import Topic
from posgate.gateway.adapters.standard import StandardAdapter
from tests.unit.gateway.adapters.contract_cases import VendorCases
from tests.unit.gateway.adapters.fake_mapping import FakeMappingLookup

MERCHANT = "acme-retail"
SECRET = b"whsec_" + base64.b64encode(b"posgate standard webhooks test key")
NOW = datetime(2024, 5, 1, 9, 33, tzinfo=UTC)


def message_id(body: bytes) -> str:
    """A stable `webhook-id` per body: a retry of an event keeps its id, as the spec requires."""
    return "msg_" + hashlib.sha256(body).hexdigest()[:24]


def sign(body: bytes, secret: bytes, at: datetime) -> Mapping[str, str]:
    """The three Standard Webhooks headers for `body` sent at `at`."""
    key = base64.b64decode(secret.removeprefix(b"whsec_"))
    sent = str(int(at.timestamp()))
    identifier = message_id(body)
    digest = hmac.new(key, f"{identifier}.{sent}.".encode() + body, hashlib.sha256).digest()
    return {
        "webhook-id": identifier,
        "webhook-timestamp": sent,
        "webhook-signature": "v1," + base64.b64encode(digest).decode(),
        "content-type": "application/json",
    }


MAPPING = FakeMappingLookup(
    tenants={("standard", MERCHANT): "tenant-acme"},
    stores={("standard", MERCHANT, "berlin-1"): "store-berlin"},
    skus={
        ("standard", MERCHANT, "TSHIRT-L"): "ACME-TS-L",
        ("standard", MERCHANT, "TSHIRT-M"): "ACME-TS-M",
    },
)

CASES = VendorCases(
    adapter=StandardAdapter(),
    fixtures=Path(__file__).parent / "fixtures",
    valid=("inventory_counts.json", "inventory_movements.json", "store_status.json"),
    malformed=(
        "malformed_sale_with_positive_delta.json",
        "malformed_unknown_type.json",
        "malformed_misspelt_field.json",
        "malformed_naive_timestamp.json",
    ),
    secret=SECRET,
    rotated_out_secret=b"whsec_" + base64.b64encode(b"the key this partner used last year"),
    signature_header="webhook-signature",
    sign=sign,
    now=NOW,
    stale_now=NOW + timedelta(minutes=5, seconds=1),
    mapping=MAPPING,
    topic=Topic.INVENTORY,
)
