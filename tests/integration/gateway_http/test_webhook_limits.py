"""Refusals at the door: body size, rate, address; each answered and audited."""

from __future__ import annotations

from posgate.gateway.http.security import WebhookGuard
from posgate.gateway.tables import raw_payloads
from posgate.settings import Settings
from tests.integration.gateway.conftest import MAPPED, count, load_mappings
from tests.integration.gateway_http.conftest import CREDENTIALS, STANDARD_URL
from tests.unit.gateway.adapters.standard.cases import CASES, NOW, SECRET


async def test_body_over_the_limit_is_413_with_or_without_content_length(make_gateway, sessions) -> None:
    gateway = make_gateway(webhook_max_body_bytes=1024)

    async def chunks():
        for _ in range(10):
            yield b"x" * 200

    async with gateway.client() as client:
        declared = await client.post(STANDARD_URL, content=b"x" * 1025)
        streamed = await client.post(STANDARD_URL, content=chunks())
        exact = await client.post(STANDARD_URL, content=b"x" * 1024)

    assert declared.status_code == 413
    assert streamed.status_code == 413
    assert streamed.json() == {"error": "payload_too_large", "reason": "body_too_large"}
    assert exact.status_code == 401  # read in full, then refused for its missing signature
    assert [row.reason for row in await gateway.audit_rows()] == ["body_too_large", "body_too_large"]
    assert await count(sessions, raw_payloads) == 1


class FixedClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_rate_limit_is_429_with_retry_after_per_provider(make_gateway, sessions) -> None:
    await load_mappings(sessions, MAPPED)
    gateway = make_gateway()
    clock = FixedClock()
    settings = Settings(webhook_credentials=CREDENTIALS, webhook_rate_per_s=0.5, webhook_burst=2)
    gateway.app.state.webhook_guard = WebhookGuard.from_settings(settings, clock)
    body = CASES.body("inventory_counts.json")
    headers = dict(CASES.sign(body, SECRET, NOW))
    async with gateway.client() as client:
        answers = [await client.post(STANDARD_URL, content=body, headers=headers) for _ in range(3)]
        other = await client.post("/v1/integrations/pos/square/webhooks/orders", content=b"{}")
        clock.now += 2
        later = await client.post(STANDARD_URL, content=body, headers=headers)

    assert [a.status_code for a in answers] == [202, 200, 429]
    assert answers[2].headers["retry-after"] == "2"
    assert answers[2].json() == {"error": "rate_limited", "reason": "rate_limited"}
    assert other.status_code == 401  # square has its own bucket
    assert later.status_code == 200
    assert [(row.status, row.reason) for row in await gateway.audit_rows()] == [(429, "rate_limited")]


async def test_ip_allow_list_is_403_outside_the_networks(make_gateway, sessions) -> None:
    closed = make_gateway(webhook_ip_allowlist={"standard": ["10.0.0.0/8", "192.168.0.0/16"]})
    opened = make_gateway(webhook_ip_allowlist={"standard": ["127.0.0.0/8"]})
    async with closed.client() as client:
        refused = await client.post(STANDARD_URL, content=b"{}")
        elsewhere = await client.post("/v1/integrations/pos/square/webhooks/orders", content=b"{}")
    async with opened.client() as client:
        allowed = await client.post(STANDARD_URL, content=b"{}")

    assert (refused.status_code, refused.json()["reason"]) == (403, "ip_not_allowed")
    assert elsewhere.status_code == 401
    assert allowed.status_code == 401
    rows = await closed.audit_rows()
    assert [(row.provider, row.status, row.client) for row in rows] == [("standard", 403, "127.0.0.1")]
