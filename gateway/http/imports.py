"""`/v1/integrations/seller/{provider}/import`: streamed bulk imports, progress, error report.

A seller authenticates with `Authorization: Bearer <secret>`, where the secret is one of the
`secrets` of a `webhook_credentials` entry for the provider; the entry's tenant is the
tenant of the upload. The body is read as a stream and processed while it arrives (see
`posgate.gateway.imports.runner`); the answer, 202 with the job's final counts, comes once
every row's outcome is committed.
"""

from __future__ import annotations

import csv
import hmac
import io
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from posgate.gateway.http.context import GatewayContext
from posgate.gateway.imports import jobs, openapi
from posgate.gateway.imports.runner import ImportRunner, Upload

BASE = "/v1/integrations/seller/{provider}/import"
MEDIA_TYPES = {"application/x-ndjson": "ndjson", "application/jsonl": "ndjson", "text/csv": "csv"}
MAX_ERRORS_PAGE = 10_000
# Row ids and offsets are 64-bit: the drivers refuse to bind larger integers.
MAX_ID = 2**63 - 1


def _problem(status: int, reason: str, detail: str = "") -> JSONResponse:
    return JSONResponse({"error": reason, "detail": detail}, status_code=status)


def _tenant(ctx: GatewayContext, request: Request, provider: str) -> str | None:
    """The tenant whose credential the bearer token is, compared in constant time."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    presented = token.strip().encode()
    found: set[str] = set()
    for credential in ctx.settings.webhook_credentials:
        if credential.provider != provider:
            continue
        for secret in credential.secrets:
            # Every secret is compared, so timing does not tell which tenant matched.
            if hmac.compare_digest(presented, secret.get_secret_value().encode()):
                found.add(credential.tenant)
    # A secret shared by two tenants is a configuration fault: writing for either would guess.
    return found.pop() if len(found) == 1 else None


async def _merchant(ctx: GatewayContext, request: Request, provider: str, tenant: str) -> str | Response:
    async with ctx.sessions() as session:
        merchants = await jobs.merchants_of(session, provider, tenant)
    wanted = request.query_params.get("merchant")
    if wanted is not None:
        return wanted if wanted in merchants else _problem(403, "merchant_not_of_tenant", wanted)
    if len(merchants) == 1:
        return merchants[0]
    if not merchants:
        return _problem(422, "no_merchant_mapping", f"no {provider} merchant is mapped to the tenant")
    return _problem(400, "merchant_required", "several merchants: pass ?merchant=")


async def start_import(request: Request) -> Response:
    """POST: stream the body into a new job; 202 with the job's counts once all is committed."""
    ctx: GatewayContext = request.app.state.ctx
    provider = request.path_params["provider"]
    tenant = _tenant(ctx, request, provider)
    if tenant is None:
        return _problem(401, "unauthorized", "bearer token of a webhook credential of the provider")
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    body_format = MEDIA_TYPES.get(media)
    if body_format is None:
        return _problem(415, "unsupported_media_type", "application/x-ndjson or text/csv")
    merchant = await _merchant(ctx, request, provider, tenant)
    if isinstance(merchant, Response):
        return merchant
    upload = Upload(provider, tenant, merchant, body_format, str(request.url), dict(request.headers))
    runner = ImportRunner(ctx.sessions, ctx.clock, ctx.wake_dispatcher)
    job_id, raw_id = await runner.start(upload)
    try:
        await runner.run(upload, (job_id, raw_id), request.stream())
    except ClientDisconnect:
        return _problem(400, "body_incomplete", f"the upload broke off; job {job_id} failed")
    async with ctx.sessions() as session:
        view = await jobs.get_job(session, job_id, provider, tenant)
    assert view is not None  # noqa: S101  (created above, never deleted)
    status_url = str(request.url_for("import_status", provider=provider, job_id=job_id).path)
    return JSONResponse({"job_id": job_id, "status_url": status_url, **_progress(view)}, status_code=202)


def _progress(view: jobs.JobView) -> dict[str, Any]:
    return {
        "job_id": view.id,
        "state": view.state,
        "format": view.format,
        "merchant_id": view.merchant_id,
        "rows_total": view.rows_total,
        "rows_ok": view.rows_ok,
        "rows_failed": view.rows_failed,
        "commands_written": view.commands_written,
        "error": view.error,
        "created_at": view.created_at.isoformat(),
        "finished_at": view.finished_at.isoformat() if view.finished_at else None,
    }


async def _owned_job(request: Request) -> jobs.JobView | Response:
    ctx: GatewayContext = request.app.state.ctx
    provider = request.path_params["provider"]
    tenant = _tenant(ctx, request, provider)
    if tenant is None:
        return _problem(401, "unauthorized", "bearer token of a webhook credential of the provider")
    # Parsed here, not by a route converter: a malformed id gets this JSON 404, not Starlette's text one.
    raw_id = str(request.path_params["job_id"])
    if not (raw_id.isascii() and raw_id.isdigit()) or int(raw_id) > MAX_ID:
        return _problem(404, "unknown_job")
    async with ctx.sessions() as session:
        view = await jobs.get_job(session, int(raw_id), provider, tenant)
    return view if view is not None else _problem(404, "unknown_job")


async def recent_imports(request: Request) -> Response:
    """GET: the caller's 20 most recent jobs, newest first (find a running upload's job)."""
    ctx: GatewayContext = request.app.state.ctx
    provider = request.path_params["provider"]
    tenant = _tenant(ctx, request, provider)
    if tenant is None:
        return _problem(401, "unauthorized", "bearer token of a webhook credential of the provider")
    async with ctx.sessions() as session:
        views = await jobs.list_jobs(session, provider, tenant, 20)
    return JSONResponse({"jobs": [_progress(view) for view in views]})


async def import_status(request: Request) -> Response:
    """GET: the job's state and counters."""
    view = await _owned_job(request)
    if isinstance(view, Response):
        return view
    return JSONResponse(_progress(view))


def _page(request: Request) -> tuple[int, int] | None:
    try:
        offset = int(request.query_params.get("offset", "0"))
        limit = int(request.query_params.get("limit", "1000"))
    except ValueError:
        return None
    if not 0 <= offset <= MAX_ID or not 1 <= limit <= MAX_ERRORS_PAGE:
        return None
    return offset, limit


async def import_errors(request: Request) -> Response:
    """GET: the per-row error report, in row order; JSON, or CSV with `?format=csv`."""
    view = await _owned_job(request)
    if isinstance(view, Response):
        return view
    page = _page(request)
    if page is None:
        return _problem(400, "bad_page", f"offset >= 0, 1 <= limit <= {MAX_ERRORS_PAGE}")
    ctx: GatewayContext = request.app.state.ctx
    async with ctx.sessions() as session:
        errors = await jobs.list_errors(session, view.id, *page)
    if request.query_params.get("format") == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["row_number", "reason", "detail", "raw"])
        writer.writerows((e.row_number, e.reason, e.detail, e.raw) for e in errors)
        return Response(out.getvalue(), media_type="text/csv")
    rows = [
        {"row_number": e.row_number, "reason": e.reason, "detail": e.detail, "raw": e.raw} for e in errors
    ]
    return JSONResponse(
        {"job_id": view.id, "offset": page[0], "rows_failed": view.rows_failed, "errors": rows}
    )


OPENAPI_PATHS = openapi.OPENAPI_PATHS
OPENAPI_SCHEMAS = openapi.OPENAPI_SCHEMAS
ROUTES = [
    Route(BASE, start_import, methods=["POST"], name="start_import"),
    Route(BASE, recent_imports, methods=["GET"], name="recent_imports"),
    Route(BASE + "/{job_id}", import_status, methods=["GET"], name="import_status"),
    Route(BASE + "/{job_id}/errors", import_errors, methods=["GET"], name="import_errors"),
]
