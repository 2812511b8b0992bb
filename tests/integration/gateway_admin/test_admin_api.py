"""The admin API end to end on SQLite and PostgreSQL: auth, mappings, failures, profiles."""

from __future__ import annotations

import logging

from posgate.gateway.tables import commands
from tests.integration.gateway.conftest import count
from tests.integration.gateway_admin.conftest import AUTH, TOKENS, unmapped_sku_failure

M_MAPPING = {
    "provider": "standard",
    "merchant_id": "acme-retail",
    "kind": "sku",
    "vendor_id": "TSHIRT-M",
    "canonical_id": "ACME-TS-M",
}


async def test_requests_without_or_with_a_wrong_token_are_refused(client, caplog) -> None:
    caplog.set_level(logging.INFO, logger="posgate.gateway.admin")
    missing = await client.get("/v1/admin/failures")
    wrong = await client.get("/v1/admin/failures", headers={"Authorization": "Bearer nope"})
    basic = await client.get("/v1/admin/failures", headers={"Authorization": f"Basic {TOKENS[0]}"})
    good = await client.get("/v1/admin/failures", headers={"Authorization": f"Bearer {TOKENS[0]}"})

    assert missing.status_code == wrong.status_code == basic.status_code == 401
    assert missing.json() == {"error": "unauthorized", "reason": "missing_bearer_token"}
    assert wrong.json() == {"error": "unauthorized", "reason": "wrong_token"}
    assert good.status_code == 200
    assert "admin action=failures.list actor=token#1 status=200" in caplog.text
    assert "admin action=failures.list actor=anonymous status=401" in caplog.text
    assert not any(token in caplog.text for token in TOKENS)
    assert not any(token in response.text for token in TOKENS for response in (missing, wrong, basic, good))


async def test_mappings_json_and_csv_bulk_upsert_list_and_delete(client, caplog) -> None:
    caplog.set_level(logging.INFO, logger="posgate.gateway.admin")
    rows = [
        {**M_MAPPING, "kind": "tenant", "vendor_id": "", "canonical_id": "tenant-acme"},
        {**M_MAPPING, "vendor_id": "TSHIRT-L", "canonical_id": "ACME-TS-L"},
    ]
    put = await client.put("/v1/admin/mappings", json=rows, headers=AUTH)
    csv = (
        "provider,merchant_id,kind,vendor_id,canonical_id\n"
        "standard,acme-retail,sku,TSHIRT-M,ACME-TS-M\n"
        "standard,acme-retail,sku,TSHIRT-L,ACME-TS-L2\n"
    )
    put_csv = await client.put(
        "/v1/admin/mappings", content=csv, headers={**AUTH, "Content-Type": "text/csv"}
    )
    listed = await client.get(
        "/v1/admin/mappings",
        params={"provider": "standard", "merchant_id": "acme-retail", "kind": "sku"},
        headers=AUTH,
    )
    assert (put.status_code, put.json()) == (200, {"count": 2})
    assert (put_csv.status_code, put_csv.json()) == (200, {"count": 2})
    assert [(row["vendor_id"], row["canonical_id"]) for row in listed.json()["mappings"]] == [
        ("TSHIRT-L", "ACME-TS-L2"),
        ("TSHIRT-M", "ACME-TS-M"),
    ]

    keys = [{key: M_MAPPING[key] for key in ("provider", "merchant_id", "kind", "vendor_id")}]
    deleted = await client.request("DELETE", "/v1/admin/mappings", json=keys, headers=AUTH)
    everything = await client.get(
        "/v1/admin/mappings", params={"provider": "standard", "merchant_id": "acme-retail"}, headers=AUTH
    )
    assert deleted.json() == {"count": 1}
    assert [row["kind"] for row in everything.json()["mappings"]] == ["sku", "tenant"]
    assert "admin action=mappings.upsert actor=token#2 status=200 count=2" in caplog.text
    assert "admin action=mappings.delete actor=token#2 status=200 count=1" in caplog.text


async def test_bad_mapping_input_is_answered_400_or_422(client) -> None:
    no_merchant = await client.get("/v1/admin/mappings", params={"provider": "standard"}, headers=AUTH)
    not_json = await client.put("/v1/admin/mappings", content=b"{nope", headers=AUTH)
    bad_kind = await client.put("/v1/admin/mappings", json=[{**M_MAPPING, "kind": "variant"}], headers=AUTH)
    no_vendor = await client.put("/v1/admin/mappings", json=[{**M_MAPPING, "vendor_id": ""}], headers=AUTH)
    bad_header = await client.put(
        "/v1/admin/mappings", content="a,b\n1,2\n", headers={**AUTH, "Content-Type": "text/csv"}
    )
    bad_row = await client.put(
        "/v1/admin/mappings",
        content="provider,merchant_id,kind,vendor_id,canonical_id\nstandard,acme,shelf,x,y\n",
        headers={**AUTH, "Content-Type": "text/csv"},
    )
    assert (no_merchant.status_code, no_merchant.json()["reason"]) == (
        400,
        "provider_and_merchant_id_required",
    )
    assert (not_json.status_code, not_json.json()) == (
        400,
        {"error": "bad_request", "reason": "invalid_json"},
    )
    assert (bad_kind.status_code, bad_kind.json()["error"]) == (422, "invalid_body")
    assert no_vendor.status_code == 422
    assert bad_header.status_code == 400
    assert bad_row.status_code == 422
    assert bad_row.json()["reason"].startswith("line 2: kind")


async def test_failures_are_listed_shown_and_replayed_once(client, sessions) -> None:
    failed = await unmapped_sku_failure(sessions)

    listed = await client.get("/v1/admin/failures", params={"class": "mapping"}, headers=AUTH)
    shown = await client.get(f"/v1/admin/failures/{failed.failure_id}", headers=AUTH)
    assert [row["id"] for row in listed.json()["failures"]] == [failed.failure_id]
    detail = shown.json()
    assert detail["failure"]["reason"] == "unmapped_sku"
    assert detail["failure"]["tenant_id"] == "tenant-acme"
    assert '"TSHIRT-M"' in detail["payload"]["body_text"]
    assert detail["payload"]["body_base64"] is None
    assert "webhook-signature" in detail["payload"]["headers"]

    await client.put("/v1/admin/mappings", json=[M_MAPPING], headers=AUTH)
    first = await client.post("/v1/admin/failures/replay", json={"ids": [failed.failure_id]}, headers=AUTH)
    written = await count(sessions, commands)
    again = await client.post("/v1/admin/failures/replay", json={"ids": [failed.failure_id]}, headers=AUTH)

    (result,) = first.json()["results"]
    assert (result["outcome"], first.json()["succeeded"]) == ("accepted", 1)
    assert written == len(result["created_command_ids"]) >= 1
    assert again.json()["results"][0]["outcome"] == "already_resolved"
    assert again.json()["results"][0]["created_command_ids"] == []
    assert await count(sessions, commands) == written
    after = await client.get("/v1/admin/failures", headers=AUTH)
    assert after.json()["failures"] == []


async def test_replay_by_filter_and_failures_that_fail_again(client, sessions) -> None:
    failed = await unmapped_sku_failure(sessions)
    # Without the mapping the replay fails again: the old failure resolves, a new one opens.
    replayed = await client.post(
        "/v1/admin/failures/replay",
        json={"filter": {"class": "mapping", "provider": "standard"}},
        headers=AUTH,
    )
    body = replayed.json()
    assert [item["failure_id"] for item in body["results"]] == [failed.failure_id]
    assert (body["results"][0]["outcome"], body["failed"]) == ("failed", 1)
    reopened = (await client.get("/v1/admin/failures", headers=AUTH)).json()["failures"]
    assert [row["reason"] for row in reopened] == ["unmapped_sku"]
    assert reopened[0]["id"] != failed.failure_id

    missing = await client.post("/v1/admin/failures/replay", json={"ids": [999999]}, headers=AUTH)
    assert missing.json()["results"][0]["outcome"] == "not_found"


async def test_bad_failure_requests(client) -> None:
    unknown = await client.get("/v1/admin/failures/424242", headers=AUTH)
    not_int = await client.get("/v1/admin/failures/abc", headers=AUTH)
    naive = await client.get("/v1/admin/failures", params={"since": "2024-05-01T09:00:00"}, headers=AUTH)
    limit = await client.get("/v1/admin/failures", params={"limit": "0"}, headers=AUTH)
    both = await client.post(
        "/v1/admin/failures/replay", json={"ids": [1], "filter": {"class": "auth"}}, headers=AUTH
    )
    neither = await client.post("/v1/admin/failures/replay", json={}, headers=AUTH)
    assert (unknown.status_code, unknown.json()) == (404, {"error": "not_found", "reason": "no_such_failure"})
    assert not_int.status_code == naive.status_code == limit.status_code == 400
    assert both.status_code == neither.status_code == 422


async def test_profiles_are_stored_listed_and_checked(client) -> None:
    empty = await client.get("/v1/admin/profiles", headers=AUTH)
    profile = {"provider": "square", "tenant": "*", "rules": {"order_lines_not_in_webhook": "reject"}}
    put = await client.put("/v1/admin/profiles", json=profile, headers=AUTH)
    changed = {
        **profile,
        "rules": {"order_lines_not_in_webhook": "off", "fractional_quantity_rounded": "warn"},
    }
    await client.put("/v1/admin/profiles", json=changed, headers=AUTH)
    listed = await client.get("/v1/admin/profiles", params={"provider": "square"}, headers=AUTH)
    unknown_rule = await client.put(
        "/v1/admin/profiles", json={**profile, "rules": {"no_such_rule": "warn"}}, headers=AUTH
    )
    bad_decision = await client.put(
        "/v1/admin/profiles", json={**profile, "rules": {"order_lines_not_in_webhook": "maybe"}}, headers=AUTH
    )
    assert empty.json()["profiles"] == []
    assert "fractional_quantity_rounded" in empty.json()["known_rules"]
    assert (put.status_code, put.json()) == (200, profile)
    assert listed.json()["profiles"] == [changed]
    assert (unknown_rule.status_code, unknown_rule.json()["reason"]) == (422, "unknown rules no_such_rule")
    assert bad_decision.status_code == 422


async def test_openapi_lists_admin_paths_with_every_status(client) -> None:
    document = (await client.get("/openapi.json")).json()
    replay = document["paths"]["/v1/admin/failures/replay"]["post"]
    assert set(replay["responses"]) == {"200", "400", "401", "404", "422"}
    assert replay["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ReplayRequest"
    }
    for name in ("ReplayRequest", "FailureQuery", "FailureDetail", "ProfileModel", "ErrorBody"):
        assert name in document["components"]["schemas"]
    assert "$defs" not in str(document)


async def test_unmapped_sku_policies_are_set_listed_and_let_a_replay_create_the_mapping(
    client, sessions
) -> None:
    failure = await unmapped_sku_failure(sessions)
    channel = await client.put(
        "/v1/admin/mapping-policies", json={"provider": "standard", "unmapped_sku": "create"}, headers=AUTH
    )
    bad = await client.put(
        "/v1/admin/mapping-policies", json={"provider": "standard", "unmapped_sku": "guess"}, headers=AUTH
    )
    listed = await client.get("/v1/admin/mapping-policies", params={"provider": "standard"}, headers=AUTH)

    replayed = await client.post(
        "/v1/admin/failures/replay", json={"ids": [failure.failure_id]}, headers=AUTH
    )

    assert channel.status_code == 200
    assert bad.status_code == 422
    assert listed.json() == {
        "policies": [{"provider": "standard", "merchant_id": "", "unmapped_sku": "create"}]
    }
    assert replayed.json()["results"][0]["outcome"] == "accepted"
    mapped = await client.get(
        "/v1/admin/mappings",
        params={"provider": "standard", "merchant_id": "acme-retail", "kind": "sku"},
        headers=AUTH,
    )
    assert ("TSHIRT-M", "TSHIRT-M") in [
        (row["vendor_id"], row["canonical_id"]) for row in mapped.json()["mappings"]
    ]
    assert await count(sessions, commands) == 1
