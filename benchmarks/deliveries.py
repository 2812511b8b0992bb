"""Signed Standard Webhooks deliveries for the gateway benchmark, each with its own webhook-id.

Signing follows `posgate.gateway.adapters.standard` (and the unit tests' `cases.sign`):
`webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, keyed with the
Base64 part of a `whsec_` secret. Timestamps are taken when the deliveries are made, so each
batch is made just before it is sent (the gateway accepts five minutes either way).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from posgate.gateway.mappings import MappingEntry
from posgate.gateway.tables import MappingKind

PROVIDER = "standard"
MERCHANT, VENDOR_STORE, STORE = "bench-merchant", "bench-store", "store-bench"
TENANT = "tenant-bench"
ITEMS = 16
PATH = "/v1/integrations/pos/standard/webhooks/inventory"


def new_secret() -> str:
    """A random `whsec_<base64>` secret for this run."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def mapping_entries() -> list[MappingEntry]:
    """Merchant → tenant, store → store, item-k → SKU-k (a small catalogue, as the adapter expects)."""
    return [
        MappingEntry(PROVIDER, MERCHANT, MappingKind.TENANT, "", TENANT),
        MappingEntry(PROVIDER, MERCHANT, MappingKind.STORE, VENDOR_STORE, STORE),
        *(MappingEntry(PROVIDER, MERCHANT, MappingKind.SKU, f"item-{k}", f"SKU-{k}") for k in range(ITEMS)),
    ]


@dataclass(frozen=True, slots=True)
class Delivery:
    """One signed delivery: its three Standard Webhooks headers and its body."""

    webhook_id: str
    timestamp: str
    signature: str
    body: bytes

    def http_request(self, host: str) -> bytes:
        """The whole HTTP/1.1 request (keep-alive)."""
        head = (
            f"POST {PATH} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"webhook-id: {self.webhook_id}\r\nwebhook-timestamp: {self.timestamp}\r\n"
            f"webhook-signature: {self.signature}\r\nContent-Length: {len(self.body)}\r\n\r\n"
        )
        return head.encode() + self.body


def make(secret: str, prefix: str, count: int, *, first_delta: int = 1) -> list[Delivery]:
    """`count` deliveries; number n is one receipt of `n + first_delta` units of item-(n mod 16).

    The delta identifies the delivery in the stock change the inventory service streams back.
    """
    key = base64.b64decode(secret.removeprefix("whsec_"))
    sent = str(int(time.time()))
    occurred = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    made = []
    for n in range(count):
        body = json.dumps(
            {
                "type": "inventory.movements",
                "timestamp": occurred,
                "data": {
                    "merchant_id": MERCHANT,
                    "store_id": VENDOR_STORE,
                    "movements": [
                        {
                            "movement_id": f"{prefix}-{n}",
                            "item_id": f"item-{n % ITEMS}",
                            "type": "receipt",
                            "delta": n + first_delta,
                        }
                    ],
                },
            },
            separators=(",", ":"),
        ).encode()
        webhook_id = f"msg_{prefix}_{n}"
        digest = hmac.new(key, f"{webhook_id}.{sent}.".encode() + body, hashlib.sha256).digest()
        made.append(Delivery(webhook_id, sent, "v1," + base64.b64encode(digest).decode(), body))
    return made


def write_for_wrk(deliveries: list[Delivery], path: Path) -> Path:
    """One tab-separated line per delivery, as `benchmarks/wrk_post.lua` reads them."""
    with path.open("wb") as out:
        for d in deliveries:
            out.write(f"{d.webhook_id}\t{d.timestamp}\t{d.signature}\t".encode() + d.body + b"\n")
    return path
