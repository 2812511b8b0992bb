"""Each pipeline outcome becomes the documented HTTP status, and tenants stay apart."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select

from posgate.gateway.adapters.square.adapter import signature
from posgate.gateway.tables import commands, failures, raw_payloads
from tests.integration.gateway.conftest import MAPPED, count, load_mappings
from tests.integration.gateway_http.conftest import OTHER_SECRET, STANDARD_URL
from tests.unit.gateway.adapters.square import cases as square
from tests.unit.gateway.adapters.standard.cases import CASES, NOW, SECRET


def signed(fixture: str, secret: bytes = SECRET, *, tamper: bool = False) -> tuple[bytes, dict[str, str]]:
    body = CASES.body(fixture)
    headers = dict(CASES.sign(body, secret, NOW))
    return (CASES.tamper(body) if tamper else body), headers


async def test_accepted_then_duplicate(make_gateway, sessions) -> None:
    await load_mappings(sessions, MAPPED)
    gateway = make_gateway()
    body, headers = signed("inventory_movements.json")
    async with gateway.client() as client:
        first = await client.post(STANDARD_URL, content=body, headers=headers)
        second = await client.post(STANDARD_URL, content=body, headers=headers)

    assert first.status_code == 202, first.text
    assert first.json()["status"] == "accepted"
    assert len(first.json()["commands"]) == 1
    assert isinstance(first.json()["raw_payload_id"], int)
    assert (second.status_code, second.json()["status"]) == (200, "duplicate")
    assert gateway.wakes == 1
    assert await count(sessions, commands) == 1


async def test_auth_failures_are_401_with_a_reason_and_never_a_secret(make_gateway, sessions, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    await load_mappings(sessions, MAPPED)
    gateway = make_gateway()
    tampered = signed("inventory_counts.json", tamper=True)
    fresh = signed("inventory_counts.json")
    async with gateway.client() as client:
        bad = await client.post(STANDARD_URL, content=tampered[0], headers=tampered[1])
        gateway.now = NOW + timedelta(minutes=6)
        stale = await client.post(STANDARD_URL, content=fresh[0], headers=fresh[1])
        unsigned = await client.post(STANDARD_URL, content=fresh[0])

    assert (bad.status_code, bad.json()["reason"]) == (401, "signature_mismatch")
    assert (stale.status_code, stale.json()["reason"]) == (401, "timestamp_stale")
    assert (unsigned.status_code, unsigned.json()["reason"]) == (401, "missing_signature")
    assert await count(sessions, failures, failures.c.failure_class == "auth") == 3
    assert await count(sessions, commands) == 0
    for secret in (SECRET, OTHER_SECRET):
        for text in (bad.text, stale.text, unsigned.text, caplog.text):
            assert secret.decode() not in text
            assert secret.removeprefix(b"whsec_").decode() not in text


async def test_tenant_whose_secret_signed_is_the_only_tenant_written(make_gateway, sessions) -> None:
    await load_mappings(sessions, MAPPED)  # acme-retail → tenant-acme
    gateway = make_gateway()
    body, headers = signed("inventory_movements.json", OTHER_SECRET)  # tenant-other's key
    async with gateway.client() as client:
        response = await client.post(STANDARD_URL, content=body, headers=headers)

    assert (response.status_code, response.json()["reason"]) == (401, "tenant_mismatch")
    assert "tenant-acme" not in response.text
    async with sessions() as session:
        failure = (await session.execute(select(failures))).one()
    assert (failure.failure_class, failure.reason) == ("auth", "tenant_mismatch")
    assert await count(sessions, commands) == 0


async def test_malformed_is_422_and_unmapped_is_held(make_gateway, sessions) -> None:
    await load_mappings(sessions, [entry for entry in MAPPED if entry.vendor_id != "TSHIRT-M"])
    gateway = make_gateway()
    malformed = signed("malformed_unknown_type.json")
    unmapped = signed("inventory_movements.json")
    async with gateway.client() as client:
        invalid = await client.post(STANDARD_URL, content=malformed[0], headers=malformed[1])
        held = await client.post(STANDARD_URL, content=unmapped[0], headers=unmapped[1])

    assert (invalid.status_code, invalid.json()["error"]) == (422, "invalid_payload")
    assert held.status_code == 202
    assert held.json() == {
        "status": "held",
        "reason": "unmapped_sku",
        "raw_payload_id": held.json()["raw_payload_id"],
    }
    assert await count(sessions, failures, failures.c.failure_class == "mapping") == 1
    assert gateway.wakes == 0


async def test_unknown_provider_and_topic_are_404_and_audited(make_gateway) -> None:
    gateway = make_gateway()
    async with gateway.client() as client:
        provider = await client.post("/v1/integrations/pos/nosuchpos/webhooks/orders", content=b"{}")
        topic = await client.post("/v1/integrations/pos/standard/webhooks/orders", content=b"{}")
        erp = await client.post("/v1/integrations/erp/toast/webhooks/stock", content=b"{}")
        family = await client.post("/v1/integrations/pos/standard/webhooks/stock", content=b"{}")

    for response, reason in (
        (provider, "unknown_provider"),
        *((r, "unknown_topic") for r in (topic, erp, family)),
    ):
        assert response.status_code == 404
        assert response.json() == {"error": "not_found", "reason": reason}
    rows = await gateway.audit_rows()
    assert [(row.provider, row.status, row.reason) for row in rows][:2] == [
        ("nosuchpos", 404, "unknown_provider"),
        ("standard", 404, "unknown_topic"),
    ]
    assert len(rows) == 4
    assert rows[2].provider == "toast"


async def test_square_signs_the_public_url_a_proxy_forwarded(make_gateway, sessions) -> None:
    gateway = make_gateway(
        clock=square.NOW,
        webhook_credentials=[
            {"provider": "square", "tenant": "tenant-cafe", "secrets": [square.SECRET.decode()]}
        ],
    )
    body = square.CASES.body("inventory_count_updated.json")
    public = "https://pos.example.com/v1/integrations/pos/square/webhooks/inventory"
    headers = {
        "x-square-hmacsha256-signature": signature(square.SECRET, public, body),
        "x-forwarded-proto": "https",
        "x-forwarded-host": "pos.example.com",
    }
    async with gateway.client() as client:
        response = await client.post(
            "/v1/integrations/pos/square/webhooks/inventory", content=body, headers=headers
        )

    # Signed and fresh; no mappings loaded, so held for an operator rather than refused.
    assert (response.status_code, response.json()["reason"]) == (202, "unmapped_merchant")
    async with sessions() as session:
        assert (await session.execute(select(raw_payloads.c.url))).scalar_one() == public


async def test_openapi_documents_every_status(make_gateway) -> None:
    gateway = make_gateway()
    async with gateway.client() as client:
        document = (await client.get("/openapi.json")).json()
    for path in (
        "/v1/integrations/pos/{provider}/webhooks/{topic}",
        "/v1/integrations/erp/{provider}/webhooks/stock",
    ):
        responses = document["paths"][path]["post"]["responses"]
        assert set(responses) == {"200", "202", "401", "403", "404", "413", "422", "429", "500"}
    assert "WebhookError" in document["components"]["schemas"]


async def test_foreign_tenant_is_refused_before_a_missing_sku_could_hold_it(make_gateway, sessions) -> None:
    await load_mappings(sessions, [entry for entry in MAPPED if entry.vendor_id != "TSHIRT-M"])
    gateway = make_gateway()
    body, headers = signed("inventory_movements.json", OTHER_SECRET)
    async with gateway.client() as client:
        response = await client.post(STANDARD_URL, content=body, headers=headers)

    assert (response.status_code, response.json()["reason"]) == (401, "tenant_mismatch")
    assert await count(sessions, failures, failures.c.failure_class == "mapping") == 0


async def test_an_erp_posts_canonical_stock_to_its_endpoint(make_gateway, sessions) -> None:
    await load_mappings(sessions, MAPPED)
    gateway = make_gateway()
    body, headers = signed("inventory_counts.json")
    erp_url = "http://gateway.test/v1/integrations/erp/standard/webhooks/stock"
    async with gateway.client() as client:
        response = await client.post(erp_url, content=body, headers=headers)
        unknown = await client.post(
            "http://gateway.test/v1/integrations/erp/square/webhooks/stock", content=body
        )
    assert response.status_code == 202, response.text
    assert await count(sessions, commands) == 1
    assert unknown.status_code == 404
