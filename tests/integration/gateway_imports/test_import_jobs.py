"""Jobs report progress while the body streams, and a body that breaks off fails its job only."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select

from posgate.gateway.http.app import build_app
from posgate.gateway.imports import jobs
from posgate.gateway.imports.runner import ImportRunner, Tuning, Upload
from posgate.gateway.imports.tables import import_errors
from posgate.gateway.tables import commands
from tests.integration.gateway_imports.conftest import MERCHANT, NOW, PROVIDER, TENANT

UPLOAD = Upload(PROVIDER, TENANT, MERCHANT, "ndjson")


def good(number: int) -> bytes:
    return f'{{"kind":"count","store":"s0","sku":"v{number % 5}","on_hand":1,"version":{number}}}\n'.encode()


async def progress(gateway, job_id: int) -> tuple[str, int, int, int]:
    async with gateway.sessions() as session:
        view = await jobs.get_job(session, job_id, PROVIDER, TENANT)
    assert view is not None
    return view.state, view.rows_total, view.rows_ok, view.rows_failed


async def test_progress_is_visible_while_the_body_streams(gateway) -> None:
    runner = ImportRunner(gateway.sessions, lambda: NOW, tuning=Tuning(chunk_rows=10, batch_size=4))
    job = await runner.start(UPLOAD)
    seen: list[tuple[str, int, int, int]] = []

    async def body():
        for number in range(1, 31):
            yield good(number) if number != 5 else b"oops\n"
            if number in (15, 25):
                seen.append(await progress(gateway, job[0]))

    await runner.run(UPLOAD, job, body())

    # Each chunk is written while the next rows are parsed, so a look may lag by one chunk.
    assert seen[0] in {("running", 0, 0, 0), ("running", 10, 9, 1)}
    assert seen[1] in {("running", 10, 9, 1), ("running", 20, 19, 1)}
    assert await progress(gateway, job[0]) == ("completed", 30, 29, 1)
    assert sum(1 for c in await gateway.commands()) >= 29 // 4


async def test_a_broken_off_body_fails_the_job_and_keeps_committed_chunks(gateway) -> None:
    runner = ImportRunner(gateway.sessions, lambda: NOW, tuning=Tuning(chunk_rows=10, batch_size=100))
    job = await runner.start(UPLOAD)

    async def body():
        for number in range(1, 16):
            yield good(number)
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await runner.run(UPLOAD, job, body())

    state, total, ok, failed = await progress(gateway, job[0])
    assert (state, total, ok, failed) == ("failed", 10, 10, 0)
    async with gateway.sessions() as session:
        view = await jobs.get_job(session, job[0], PROVIDER, TENANT)
        stored = (await session.execute(select(func.count()).select_from(commands))).scalar_one()
        errors = (await session.execute(select(func.count()).select_from(import_errors))).scalar_one()
    assert view is not None and "client went away" in (view.error or "")
    assert (stored, errors) == (1, 0)


async def test_the_gateway_app_serves_the_import_routes_and_documents_them(gateway) -> None:
    app = build_app(gateway.app.state.ctx)
    paths = {route.path for route in app.routes}  # type: ignore[attr-defined]
    assert "/v1/integrations/seller/{provider}/import" in paths
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://gateway.test"
    ) as client:
        document = (await client.get("/openapi.json")).json()
    assert "/v1/integrations/seller/{provider}/import/{job_id}/errors" in document["paths"]
    assert "ImportJob" in document["components"]["schemas"]
