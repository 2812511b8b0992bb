"""Uploads of small NDJSON and CSV files: exact error reports, commands, idempotency, auth."""

from __future__ import annotations

from posgate.contracts import catalog, inventory
from posgate.gateway.adapters.commands import APPLY_MOVEMENTS, SET_COUNTS, UPSERT_ITEMS
from posgate.gateway.imports.batches import UPSERT_PRICE_LIST
from tests.integration.gateway_imports.cases import (
    CSV_BODY,
    CSV_ERRORS,
    NDJSON_BODY,
    NDJSON_ERRORS,
    in_chunks,
)
from tests.integration.gateway_imports.conftest import CSV, NDJSON, OTHER_TOKEN, TENANT, URL


async def errors_of(client, job_id: int, headers=NDJSON) -> list[tuple[int, str]]:
    response = await client.get(f"{URL}/{job_id}/errors", headers=headers)
    assert response.status_code == 200
    return [(e["row_number"], e["reason"]) for e in response.json()["errors"]]


async def test_ndjson_upload_reports_each_bad_row_and_writes_the_good_ones(gateway) -> None:
    async with gateway.client() as client:
        response = await client.post(URL, content=NDJSON_BODY, headers=NDJSON)
        assert response.status_code == 202, response.text
        job = response.json()
        errors = await errors_of(client, job["job_id"])

    assert job["status_url"] == f"{URL}/{job['job_id']}"
    assert (job["state"], job["rows_total"], job["rows_ok"], job["rows_failed"]) == ("completed", 13, 4, 9)
    assert errors == NDJSON_ERRORS
    stored = await gateway.commands()
    assert sorted((c.target, c.store_id) for c in stored) == sorted(
        [
            (SET_COUNTS, "store-0"),
            (SET_COUNTS, "store-1"),
            (APPLY_MOVEMENTS, "store-1"),
            (UPSERT_ITEMS, ""),
            (UPSERT_PRICE_LIST, ""),
        ]
    )
    assert {c.tenant_id for c in stored} == {TENANT}
    assert job["commands_written"] == 5
    assert gateway.wakes >= 1
    by_target = {(c.target, c.store_id): bytes(c.body) for c in stored}
    counts = inventory.pb.SetCountsRequest.FromString(by_target[(SET_COUNTS, "store-0")])
    assert [(c.key.sku, c.on_hand, c.source_version) for c in counts.counts] == [("SKU-0", 5, 3)]
    moved = inventory.pb.ApplyMovementsRequest.FromString(by_target[(APPLY_MOVEMENTS, "store-1")])
    assert [(m.key.sku, m.delta) for m in moved.movements] == [("SKU-1", -2)]
    assert moved.movements[0].type == inventory.pb.MovementType.MOVEMENT_TYPE_SALE
    items = catalog.pb.UpsertItemsRequest.FromString(by_target[(UPSERT_ITEMS, "")])
    assert [(i.sku, [v.sku for v in i.variants]) for i in items.items] == [("SKU-3", ["SKU-4", "SKU-2"])]
    prices = catalog.pb.UpsertPriceListRequest.FromString(by_target[(UPSERT_PRICE_LIST, "")])
    assert [(e.sku, e.price.amount_minor, e.price.currency_code) for e in prices.price_list.entries] == [
        ("SKU-3", 1250, "EUR")
    ]


async def test_csv_streamed_in_tiny_chunks_gives_the_exact_error_report(gateway) -> None:
    async with gateway.client() as client:
        response = await client.post(URL, content=in_chunks(CSV_BODY, 3), headers=CSV)
        assert response.status_code == 202, response.text
        job = response.json()
        errors = await errors_of(client, job["job_id"])
        report = await client.get(f"{URL}/{job['job_id']}/errors?format=csv", headers=CSV)

    assert (job["format"], job["rows_total"], job["rows_ok"], job["rows_failed"]) == ("csv", 9, 3, 6)
    assert errors == CSV_ERRORS
    assert report.headers["content-type"].startswith("text/csv")
    lines = report.text.splitlines()
    assert lines[0] == "row_number,reason,detail,raw"
    assert lines[1].startswith("3,negative_count,")
    stored = await gateway.commands()
    assert sorted(c.target for c in stored) == sorted(
        [SET_COUNTS, APPLY_MOVEMENTS, UPSERT_ITEMS, UPSERT_PRICE_LIST]
    )
    items = catalog.pb.UpsertItemsRequest.FromString(
        next(bytes(c.body) for c in stored if c.target == UPSERT_ITEMS)
    )
    assert items.items[0].name == 'Shirt, "large"\nsecond line'


async def test_uploading_the_same_file_again_changes_nothing(gateway) -> None:
    async with gateway.client() as client:
        first = (await client.post(URL, content=NDJSON_BODY, headers=NDJSON)).json()
        before = [(c.idempotency_key, bytes(c.body)) for c in await gateway.commands()]
        second = (await client.post(URL, content=in_chunks(NDJSON_BODY, 7), headers=NDJSON)).json()
        assert await errors_of(client, second["job_id"]) == NDJSON_ERRORS

    assert second["job_id"] != first["job_id"]
    assert (second["rows_ok"], second["commands_written"]) == (4, 0)
    assert [(c.idempotency_key, bytes(c.body)) for c in await gateway.commands()] == before


async def test_progress_and_error_pages_belong_to_the_uploading_tenant(gateway) -> None:
    async with gateway.client() as client:
        job = (await client.post(URL, content=NDJSON_BODY, headers=NDJSON)).json()
        status = await client.get(job["status_url"], headers=NDJSON)
        page = await client.get(f"{URL}/{job['job_id']}/errors?offset=2&limit=3", headers=NDJSON)
        bad_page = await client.get(f"{URL}/{job['job_id']}/errors?limit=0", headers=NDJSON)
        other = {"authorization": f"Bearer {OTHER_TOKEN}"}
        foreign = await client.get(job["status_url"], headers=other)
        missing = await client.get(f"{URL}/999999", headers=NDJSON)
        mine = await client.get(URL, headers=NDJSON)
        theirs = await client.get(URL, headers=other)

    assert status.status_code == 200
    assert {k: status.json()[k] for k in ("state", "rows_total", "rows_ok", "rows_failed")} == {
        "state": "completed",
        "rows_total": 13,
        "rows_ok": 4,
        "rows_failed": 9,
    }
    assert [(e["row_number"], e["reason"]) for e in page.json()["errors"]] == NDJSON_ERRORS[2:5]
    assert page.json()["errors"][0]["raw"].startswith('{"kind":"delta"')
    assert bad_page.status_code == 400
    assert (foreign.status_code, missing.status_code) == (404, 404)
    assert [j["job_id"] for j in mine.json()["jobs"]] == [job["job_id"]]
    assert theirs.json()["jobs"] == []


async def test_uploads_without_a_seller_token_or_of_another_kind_are_refused(gateway) -> None:
    async with gateway.client() as client:
        anonymous = await client.post(URL, content=NDJSON_BODY, headers={"content-type": "text/csv"})
        wrong = await client.post(
            URL, content=NDJSON_BODY, headers={**NDJSON, "authorization": "Bearer nope"}
        )
        other_provider = await client.post(
            "/v1/integrations/seller/square/import", content=NDJSON_BODY, headers=NDJSON
        )
        json_body = await client.post(
            URL, content=b"{}", headers={**NDJSON, "content-type": "application/json"}
        )
        foreign_merchant = await client.post(
            f"{URL}?merchant=acct-other", content=NDJSON_BODY, headers=NDJSON
        )
        status = await client.get(f"{URL}/1")

    assert [r.status_code for r in (anonymous, wrong, other_provider, status)] == [401, 401, 401, 401]
    assert json_body.status_code == 415
    assert (foreign_merchant.status_code, foreign_merchant.json()["error"]) == (403, "merchant_not_of_tenant")
    assert await gateway.commands() == []


async def test_nul_bytes_huge_numbers_and_odd_times_are_row_errors(gateway) -> None:
    body = (
        '{"kind":"count","store":"s0","sku":"v0","on_hand":99999999999999999999,"version":1}\n'
        '{"kind":"count","store":"s0","sku":"v0\\u0000","on_hand":1,"version":1}\n'
        '{"kind":"count"\u0000}\n'
        '{"kind":"count","store":"s0","sku":"v0","on_hand":1,"version":1}\n'
        '{"kind":"count","store":"s0","sku":"v0","on_hand":1,"counted_at":"0001-01-01T00:00:00+05:00"}\n'
        '{"kind":"count","store":"s0","sku":"v0","on_hand":1,"counted_at":"2026-11-20T10:00:00"}\n'
    ).encode()
    async with gateway.client() as client:
        job = (await client.post(URL, content=body, headers=NDJSON)).json()
        report = (await client.get(f"{URL}/{job['job_id']}/errors", headers=NDJSON)).json()["errors"]

    assert (job["state"], job["rows_ok"], job["rows_failed"]) == ("completed", 1, 5)
    assert [(e["row_number"], e["reason"]) for e in report] == [
        (1, "invalid_value"),
        (2, "unmapped_sku"),
        (3, "malformed_json"),
        (5, "invalid_timestamp"),
        (6, "invalid_timestamp"),
    ]
    assert "\x00" not in report[2]["raw"]
