"""The proof of the issue: a 1,000,000-row seller import completes with an exact error report."""

from __future__ import annotations

import resource
import time

import pytest
from sqlalchemy import select

from posgate.contracts import inventory
from posgate.gateway.adapters.commands import APPLY_MOVEMENTS, SET_COUNTS
from posgate.gateway.tables import commands
from tests.integration.gateway_imports.conftest import NDJSON, URL, gateway_on, mapping_entries

ROWS = 1_000_000
STORES = 10
SKUS = 1_000
# Every 1000th row is bad (0.1%), cycling through these faults.
BAD = [
    ('{"kind":"count","store":"s1","sku":"v1","on_hand":-4,"version":9}', "negative_count"),
    ('{"kind":"count","store":"s1",', "malformed_json"),
    ('{"kind":"delta","store":"s1","sku":"v1","type":"sale","delta":3,"key":"x"}', "bad_sign"),
    ('{"kind":"count","store":"s1","sku":"unknown","on_hand":1,"version":1}', "unmapped_sku"),
    ('{"kind":"count","store":"s1","sku":"v1","on_hand":1.5,"version":1}', "wrong_type"),
]


def row(number: int) -> tuple[str, str]:
    """Row `number` (1-based) and the reason it must be rejected with ('' when good)."""
    if number % 1000 == 0:
        return BAD[(number // 1000) % len(BAD)]
    store, sku = f"s{number % STORES}", f"v{number % SKUS}"
    if number % 2:
        return (
            f'{{"kind":"count","store":"{store}","sku":"{sku}","on_hand":{number % 97},"version":{number}}}',
            "",
        )
    key = f"mv-{number}"
    return f'{{"kind":"delta","store":"{store}","sku":"{sku}","type":"receipt","delta":2,"key":"{key}"}}', ""


async def body():
    """The upload, generated as it is sent: 1,000 rows per chunk, never the whole file."""
    for start in range(1, ROWS + 1, 1000):
        yield "".join(row(n)[0] + "\n" for n in range(start, start + 1000)).encode()


@pytest.mark.slow
async def test_a_million_row_import_completes_with_an_exact_error_report(postgres_url: str) -> None:
    gateway, engine = await gateway_on(postgres_url, mapping_entries(STORES, SKUS))
    try:
        started = time.perf_counter()
        async with gateway.client() as client:
            response = await client.post(URL, content=body(), headers=NDJSON)
            elapsed = time.perf_counter() - started
            assert response.status_code == 202, response.text
            job = response.json()
            report: list[tuple[int, str]] = []
            while len(report) < job["rows_failed"]:
                page = await client.get(
                    f"{URL}/{job['job_id']}/errors?offset={len(report)}&limit=10000", headers=NDJSON
                )
                report += [(e["row_number"], e["reason"]) for e in page.json()["errors"]]
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"\n1M-row import: {elapsed:.1f} s, {ROWS / elapsed:,.0f} rows/s, peak RSS {peak_mb:.0f} MB")

        expected = [(n, row(n)[1]) for n in range(1000, ROWS + 1, 1000)]
        assert (job["state"], job["rows_total"], job["rows_failed"]) == ("completed", ROWS, len(expected))
        assert job["rows_ok"] == ROWS - len(expected)
        assert report == expected
        lines = 0
        async with gateway.sessions() as session:
            stored = (await session.execute(select(commands.c.target, commands.c.body))).all()
        for target, raw in stored:
            if target == SET_COUNTS:
                lines += len(inventory.pb.SetCountsRequest.FromString(raw).counts)
            elif target == APPLY_MOVEMENTS:
                lines += len(inventory.pb.ApplyMovementsRequest.FromString(raw).movements)
        assert lines == job["rows_ok"]
        assert job["commands_written"] == len(stored)
    finally:
        await engine.dispose()
