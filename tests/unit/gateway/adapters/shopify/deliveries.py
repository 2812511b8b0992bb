"""Shopify deliveries signed for the tests, and the commands the adapter makes of them."""

from __future__ import annotations

import json

from posgate.contracts import common
from tests.unit.gateway.adapters.shopify.cases import (
    CASES,
    MAPPING,
    NOW,
    SECRET,
    TOPICS,
    headers,
)

ADAPTER = CASES.adapter
ORDER_ID = "5678901234567890123"
WEBHOOK_ID = "b54557e4-8a5f-4bf7-9d70-bcd043a1e2f3"


def delivery(body: bytes, topic: str, webhook_id: str = WEBHOOK_ID):
    return CASES.request(body, headers(body, SECRET, NOW, topic, webhook_id))


def commands_of(fixture: str, mapping=MAPPING, webhook_id: str = WEBHOOK_ID):
    request = delivery(CASES.body(fixture), TOPICS[fixture], webhook_id)
    ADAPTER.verify_signature(request, [SECRET], NOW)
    return ADAPTER.to_canonical_commands(ADAPTER.parse(request), mapping)


def edited(fixture: str, edit) -> bytes:
    document = json.loads(CASES.body(fixture))
    edit(document)
    return json.dumps(document).encode()


def money_of(value: common.pb.Money) -> tuple[int, str]:
    return value.amount_minor, value.currency_code
