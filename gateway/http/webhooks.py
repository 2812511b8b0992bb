"""Vendor webhooks over HTTP: the door (security), then the pipeline, then an honest status.

`POST /v1/integrations/pos/{provider}/webhooks/{topic}` (orders, inventory, menu,
store-status) and `POST /v1/integrations/erp/{provider}/webhooks/stock`. The status tells
the vendor whether to retry: 2xx for anything stored (including deliveries held for a
missing mapping, which a retry cannot fix), 401/422 for deliveries no retry will fix either
but the vendor should hear about, 413/429/403/404 refused at the door (audited in
`gw_audit`), 500 only when nothing could be stored. See docs/gateway-http.md.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, NamedTuple

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from posgate.bus.retry import describe_error
from posgate.gateway import audit
from posgate.gateway.adapters.base import ERP_TOPICS, POS_TOPICS, InboundRequest, Topic
from posgate.gateway.deliveries import IngestResult
from posgate.gateway.http import webhook_docs
from posgate.gateway.http.context import GatewayContext
from posgate.gateway.http.security import (
    BodyTooLarge,
    WebhookGuard,
    all_secrets,
    read_limited,
    signing_tenant,
)
from posgate.gateway.ingestor import Ingestor
from posgate.gateway.pipeline import admit
from posgate.gateway.tables import FailureClass, Outcome

log = logging.getLogger(__name__)

# The app reads each route module's OpenAPI paths and schemas (`posgate.gateway.http.app`).
OPENAPI_PATHS = webhook_docs.OPENAPI_PATHS
OPENAPI_SCHEMAS = webhook_docs.OPENAPI_SCHEMAS


def guard_of(request: Request) -> WebhookGuard:
    """The app's `WebhookGuard`, built on first use from the context's settings.

    It lives on `app.state` (not in `GatewayContext`) because its in-process rate-limit
    buckets are per app instance; tests may set `app.state.webhook_guard` before the first
    request. Whoever builds it closes its limiter (`gateway.component` on shutdown).
    """
    state = request.app.state
    guard: WebhookGuard | None = getattr(state, "webhook_guard", None)
    if guard is None:
        guard = state.webhook_guard = WebhookGuard.from_settings(request.app.state.ctx.settings)
    return guard


def ingestor_of(request: Request) -> Ingestor:
    """The app's `Ingestor` (group commit), built on first use; it wakes the dispatcher."""
    state = request.app.state
    ingestor: Ingestor | None = getattr(state, "ingestor", None)
    if ingestor is None:
        ctx: GatewayContext = state.ctx
        ingestor = Ingestor(ctx.sessions, on_commands=ctx.wake_dispatcher, dispatcher=ctx.hand_over)
        state.ingestor = ingestor
    return ingestor


def public_url(request: Request, headers: Mapping[str, str]) -> str:
    """The URL the vendor posted to: scheme and host as a proxy forwarded them, path as received.

    `X-Forwarded-Proto` / `X-Forwarded-Host` (first value) win over the connection's own, so
    behind a TLS-terminating proxy Square's signature over `https://public.host/...` verifies.
    Trusting them is safe here: the URL only feeds signature checks, which a forger fails anyway.
    `headers` are the request's, names in lower case.
    """
    scope = request.scope
    # Read from the ASGI scope: `request.url` would parse a whole URL object for each webhook.
    scheme = headers.get("x-forwarded-proto", "").split(",")[0].strip() or scope.get("scheme", "http")
    host = (
        headers.get("x-forwarded-host", "").split(",")[0].strip() or headers.get("host") or request.url.netloc
    )
    raw_path = scope.get("raw_path")
    path = raw_path.decode("latin-1") if isinstance(raw_path, bytes) else request.url.path
    query = scope.get("query_string", b"").decode("latin-1")
    return f"{scheme}://{host}{path}" + (f"?{query}" if query else "")


class _Call(NamedTuple):
    """Who called which endpoint (what every refusal and log line names)."""

    ctx: GatewayContext
    provider: str
    topic: str
    client: str


async def pos_webhook(request: Request) -> Response:
    """A POS vendor's webhook."""
    return await _handle(request, request.path_params["topic"], POS_TOPICS)


async def erp_webhook(request: Request) -> Response:
    """An ERP's stock feed."""
    return await _handle(request, Topic.STOCK, ERP_TOPICS)


async def _handle(request: Request, topic: str, family: frozenset[str]) -> Response:
    ctx: GatewayContext = request.app.state.ctx
    provider = str(request.path_params["provider"])
    client = request.client.host if request.client else ""
    call = _Call(ctx, provider, topic, client)
    # Read once from the ASGI scope: Starlette's `request.headers` searches its list per look-up.
    headers = {
        name.decode("latin-1").lower(): value.decode("latin-1") for name, value in request.scope["headers"]
    }
    admitted = await _admit(request, call, family, headers.get("content-length"))
    if isinstance(admitted, Response):
        return admitted
    now = ctx.clock()
    inbound = InboundRequest(
        provider=provider,
        topic=topic,
        url=public_url(request, headers),
        headers=headers,
        body=admitted,
        received_at=now,
    )
    credentials = guard_of(request).credentials.get(provider, ())
    signer = signing_tenant(ctx.adapters[provider], inbound, credentials, now)
    secrets = signer.secrets if signer else all_secrets(credentials)
    tenant = signer.tenant if signer else None
    delivery = admit(ctx.adapters[provider], inbound, secrets, now, tenant, verified=signer is not None)
    try:
        result = await ingestor_of(request).submit(delivery)
    except Exception as error:
        # Nothing was stored: the one case where the vendor must retry.
        log.error("webhook not stored provider=%s topic=%s: %s", provider, topic, describe_error(error))
        return JSONResponse({"error": "not_stored", "reason": "storage_unavailable"}, status_code=500)
    return _answer(result, call)


async def _admit(
    request: Request, call: _Call, family: frozenset[str], declared_length: str | None
) -> Response | bytes:
    """The body, or the refusal: unknown endpoint, address not allowed, rate limited, too large."""
    ctx, provider, topic, client = call
    guard = guard_of(request)
    adapter = ctx.adapters.get(provider)
    if adapter is None:
        return await _refuse(call, 404, "unknown_provider")
    if topic not in family or topic not in adapter.topics:
        return await _refuse(call, 404, "unknown_topic")
    if not guard.allow_list.allows(provider, client):
        return await _refuse(call, 403, "ip_not_allowed")
    wait = await guard.limiter.retry_after(provider)
    if wait:
        return await _refuse(call, 429, "rate_limited", {"Retry-After": str(wait)})
    try:
        return await read_limited(request.stream(), declared_length, guard.max_body_bytes)
    except BodyTooLarge:
        return await _refuse(call, 413, "body_too_large")


def _answer(result: IngestResult, call: _Call) -> Response:
    _, provider, topic, client = call
    status, body = _status_of(result)
    log.info(
        "webhook provider=%s topic=%s status=%d outcome=%s reason=%s raw_payload_id=%d client=%s",
        provider,
        topic,
        status,
        result.outcome,
        result.reason or "-",
        result.raw_payload_id,
        client,
    )
    # The same compact JSON as `JSONResponse`, without its stdlib encoder set up per answer.
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _status_of(result: IngestResult) -> tuple[int, dict[str, Any]]:
    if result.outcome == Outcome.ACCEPTED:
        return 202, {
            "status": "accepted",
            "raw_payload_id": result.raw_payload_id,
            "commands": list(result.command_ids),
        }
    if result.outcome == Outcome.DUPLICATE:
        return 200, {"status": "duplicate", "raw_payload_id": result.raw_payload_id}
    if result.failure_class == FailureClass.AUTH:
        return 401, {"error": "unauthorized", "reason": result.reason}
    if result.failure_class == FailureClass.VALIDATION:
        return 422, {"error": "invalid_payload", "reason": result.reason}
    # Mapping and processing failures are stored for review and replay; a retry cannot help.
    return 202, {"status": "held", "reason": result.reason, "raw_payload_id": result.raw_payload_id}


async def _refuse(
    call: _Call, status: int, reason: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    ctx, provider, topic, client = call
    log.warning(
        "webhook refused provider=%.64s topic=%.64s status=%d reason=%s client=%s",
        provider,
        topic,
        status,
        reason,
        client,
    )
    entry = audit.AuditEntry(ctx.clock(), provider, topic, status, reason, client)
    try:
        await audit.record(ctx.sessions, entry)
    except Exception as error:
        # The refusal stands without its row; the log line above is the record then.
        log.error("audit row not written: %s", describe_error(error))
    return JSONResponse({"error": _ERRORS[status], "reason": reason}, status_code=status, headers=headers)


_ERRORS = {403: "forbidden", 404: "not_found", 413: "payload_too_large", 429: "rate_limited"}

ROUTES = [
    Route("/v1/integrations/pos/{provider}/webhooks/{topic}", pos_webhook, methods=["POST"]),
    Route("/v1/integrations/erp/{provider}/webhooks/stock", erp_webhook, methods=["POST"]),
]
