"""The admin API: mappings, failures (list, inspect, replay) and validation profiles.

Every request needs `Authorization: Bearer <token>` with one of `POSGATE_ADMIN_TOKENS`
(compared in constant time). Tokens are never echoed or logged: the audit line of every
admin action names the caller by the token's position (`actor=token#2`).
"""

from __future__ import annotations

import base64
import csv
import hmac
import io
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict
from datetime import datetime
from http import HTTPStatus
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from posgate.gateway import mappings, profiles
from posgate.gateway.failures import (
    CredentialsFor,
    FailureFilter,
    FailureView,
    RawPayload,
    TenantCredential,
    get_failure,
    list_failures,
    replay,
)
from posgate.gateway.http import admin_models as m
from posgate.gateway.http.context import GatewayContext
from posgate.gateway.http.security import credentials_by_provider
from posgate.settings import Settings

LOG = logging.getLogger("posgate.gateway.admin")
MAX_BODY_BYTES = 32 * 1024 * 1024
MAX_LIST = 1000
# Row ids are 64-bit: a larger id names no row, and the drivers refuse to bind it.
MAX_ID = 2**63 - 1
CSV_HEADER = ["provider", "merchant_id", "kind", "vendor_id", "canonical_id"]
# An already resolved failure needs nothing more: replaying it again is not a failure.
SUCCESS = frozenset({"accepted", "requeued", "already_resolved"})
_MAPPINGS = TypeAdapter(list[m.MappingModel])
_KEYS = TypeAdapter(list[m.MappingKey])

OPENAPI_PATHS = m.OPENAPI_PATHS
OPENAPI_SCHEMAS = m.OPENAPI_SCHEMAS


class AdminError(Exception):
    """An answer other than 200: HTTP status, error class and stable reason."""

    def __init__(self, status: int, error: str, reason: str) -> None:
        """Keep the status and the body's two fields."""
        super().__init__(f"{status} {error}: {reason}")
        self.status = status
        self.error = error
        self.reason = reason


class Call:
    """One admin request: its context, the authenticated actor and the audit details."""

    def __init__(self, request: Request, actor: str) -> None:
        """Bind the request; `actor` is `token#n`."""
        self.request = request
        self.ctx: GatewayContext = request.app.state.ctx
        self.actor = actor
        self.details: dict[str, object] = {}


Handler = Callable[[Call], Awaitable[BaseModel]]


def replay_secrets(settings: Settings) -> CredentialsFor:
    """Each tenant's webhook credential with a provider, as the webhooks see them.

    Auth failures are re-verified with them, and the tenant whose secrets verify is the signer.
    """
    grouped = credentials_by_provider(settings)

    def secrets_for(provider: str) -> Sequence[TenantCredential]:
        return tuple((credential.tenant, credential.secrets) for credential in grouped.get(provider, ()))

    return secrets_for


def authenticate(settings: Settings, header: str | None) -> str:
    """The actor (`token#n`, 1-based) the bearer token belongs to.

    Raises:
        AdminError: 401 when the header is missing or the token is not an admin token.

    """
    scheme, _, presented = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        raise AdminError(401, "unauthorized", "missing_bearer_token")
    candidate = presented.strip().encode()
    actor = ""
    # Compare against every token, so the time taken says nothing about which one matched.
    for index, token in enumerate(settings.admin_tokens, start=1):
        if hmac.compare_digest(candidate, token.get_secret_value().encode()) and not actor:
            actor = f"token#{index}"
    if not actor:
        raise AdminError(401, "unauthorized", "wrong_token")
    return actor


def endpoint(action: str, handler: Handler) -> Callable[[Request], Awaitable[JSONResponse]]:
    """Wrap a handler with authentication, error answers and the audit line."""

    async def run(request: Request) -> JSONResponse:
        actor = "anonymous"
        call: Call | None = None
        try:
            actor = authenticate(request.app.state.ctx.settings, request.headers.get("authorization"))
            call = Call(request, actor)
            answer = await handler(call)
        except AdminError as error:
            _audit(action, actor, error.status, call.details if call else {})
            body = m.ErrorBody(error=error.error, reason=error.reason)
            headers = {"WWW-Authenticate": "Bearer"} if error.status == HTTPStatus.UNAUTHORIZED else None
            return JSONResponse(body.model_dump(), status_code=error.status, headers=headers)
        _audit(action, actor, 200, call.details)
        return JSONResponse(answer.model_dump(mode="json"))

    return run


def _audit(action: str, actor: str, status: int, details: dict[str, object]) -> None:
    extra = "".join(f" {key}={value}" for key, value in details.items())
    LOG.info("admin action=%s actor=%s status=%s%s", action, actor, status, extra)


async def _body(call: Call) -> bytes:
    body = await call.request.body()
    if len(body) > MAX_BODY_BYTES:
        raise AdminError(400, "bad_request", "body_too_large")
    return body


async def _json_body(call: Call) -> object:
    try:
        return json.loads(await _body(call))
    except (ValueError, UnicodeDecodeError):
        raise AdminError(400, "bad_request", "invalid_json") from None


def _invalid(error: ValidationError, prefix: str = "") -> AdminError:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return AdminError(422, "invalid_body", f"{prefix}{where}: {first['msg']}"[:300])


def _query(call: Call, name: str) -> str | None:
    value = call.request.query_params.get(name)
    return value or None


# -- mappings ---------------------------------------------------------------------------------


async def list_mapping_rows(call: Call) -> m.MappingList:
    """`GET /v1/admin/mappings?provider=&merchant_id=&kind=`."""
    provider, merchant, kind = (_query(call, name) for name in ("provider", "merchant_id", "kind"))
    if provider is None or merchant is None:
        raise AdminError(400, "bad_request", "provider_and_merchant_id_required")
    if kind is not None and kind not in {"tenant", "store", "sku"}:
        raise AdminError(400, "bad_request", "unknown_kind")
    async with call.ctx.sessions() as session:
        rows = await mappings.list_mappings(session, provider, merchant, kind)
    call.details.update(provider=provider, merchant_id=merchant, count=len(rows))
    return m.MappingList(mappings=[m.MappingModel.model_validate(asdict(row)) for row in rows])


def _csv_rows(body: bytes) -> list[m.MappingModel]:
    try:
        reader = csv.DictReader(io.StringIO(body.decode("utf-8-sig")))
    except UnicodeDecodeError:
        raise AdminError(400, "bad_request", "csv_not_utf8") from None
    if [name.strip() for name in reader.fieldnames or []] != CSV_HEADER:
        raise AdminError(400, "bad_request", "csv_header_must_be_" + ",".join(CSV_HEADER))
    rows = []
    for number, row in enumerate(reader, start=2):
        try:
            rows.append(m.MappingModel.model_validate({k.strip(): (v or "").strip() for k, v in row.items()}))
        except (ValidationError, AttributeError) as error:
            if isinstance(error, ValidationError):
                raise _invalid(error, f"line {number}: ") from None
            raise AdminError(400, "bad_request", f"csv_line_{number}_malformed") from None
    return rows


async def upsert_mappings(call: Call) -> m.CountResult:
    """`PUT /v1/admin/mappings`: a JSON list of mappings, or a CSV file with a header."""
    if call.request.headers.get("content-type", "").startswith("text/csv"):
        rows = _csv_rows(await _body(call))
    else:
        try:
            rows = _MAPPINGS.validate_python(await _json_body(call))
        except ValidationError as error:
            raise _invalid(error) from None
    entries = [mappings.MappingEntry(**row.model_dump()) for row in rows]
    async with call.ctx.sessions() as session:
        try:
            count = await mappings.upsert(session, entries, call.ctx.clock())
        except ValueError as error:
            raise AdminError(422, "invalid_body", str(error)[:300]) from None
        await session.commit()
    call.details.update(count=count)
    return m.CountResult(count=count)


async def delete_mapping_rows(call: Call) -> m.CountResult:
    """`DELETE /v1/admin/mappings`: a JSON list of keys."""
    try:
        keys = _KEYS.validate_python(await _json_body(call))
    except ValidationError as error:
        raise _invalid(error) from None
    groups: dict[tuple[str, str, str], list[str]] = {}
    for key in keys:
        groups.setdefault((key.provider, key.merchant_id, key.kind), []).append(key.vendor_id)
    count = 0
    async with call.ctx.sessions() as session:
        for (provider, merchant, kind), vendor_ids in groups.items():
            count += await mappings.delete_mappings(session, provider, merchant, kind, vendor_ids)
        await session.commit()
    call.details.update(count=count)
    return m.CountResult(count=count)


# -- failures ---------------------------------------------------------------------------------


def _failure_out(view: FailureView) -> m.FailureOut:
    return m.FailureOut.model_validate(asdict(view))


def _payload_out(raw: RawPayload) -> m.RawPayloadOut:
    try:
        text: str | None = raw.body.decode("utf-8")
        encoded = None
    except UnicodeDecodeError:
        text, encoded = None, base64.b64encode(raw.body).decode()
    fields = {k: v for k, v in asdict(raw).items() if k != "body"}
    return m.RawPayloadOut(**fields, body_text=text, body_base64=encoded)


def _since(raw: str | None) -> datetime | None:
    if raw is None:
        return None
    try:
        since = datetime.fromisoformat(raw)
    except ValueError:
        raise AdminError(400, "bad_request", "since_not_iso8601") from None
    if since.tzinfo is None:
        raise AdminError(400, "bad_request", "since_needs_timezone")
    return since


def _limit(raw: str | None) -> int:
    if raw is None:
        return 100
    # `isascii`: `str.isdigit` is true for digits `int` refuses, such as "²".
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_LIST:
        raise AdminError(400, "bad_request", f"limit_must_be_1_to_{MAX_LIST}")
    return int(raw)


async def list_failure_rows(call: Call) -> m.FailureList:
    """`GET /v1/admin/failures?class=&provider=&tenant=&store=&since=&limit=`, by impact."""
    where = FailureFilter(
        failure_class=_query(call, "class"),
        provider=_query(call, "provider"),
        tenant_id=_query(call, "tenant"),
        store_id=_query(call, "store"),
        since=_since(_query(call, "since")),
    )
    limit = _limit(_query(call, "limit"))
    async with call.ctx.sessions() as session:
        views = await list_failures(session, where, limit)
    call.details.update(count=len(views))
    return m.FailureList(failures=[_failure_out(view) for view in views])


async def show_failure(call: Call) -> m.FailureDetail:
    """`GET /v1/admin/failures/{id}`: the failure and its raw payload."""
    raw_id = str(call.request.path_params["failure_id"])
    if not (raw_id.isascii() and raw_id.isdigit()):
        raise AdminError(400, "bad_request", "id_must_be_an_integer")
    found = None
    if int(raw_id) <= MAX_ID:
        async with call.ctx.sessions() as session:
            found = await get_failure(session, int(raw_id))
    call.details.update(id=raw_id)
    if found is None:
        raise AdminError(404, "not_found", "no_such_failure")
    view, raw = found
    return m.FailureDetail(failure=_failure_out(view), payload=_payload_out(raw) if raw else None)


async def replay_failures(call: Call) -> m.ReplayResponse:
    """`POST /v1/admin/failures/replay` with `{"ids": [...]}` or `{"filter": {...}}`."""
    try:
        wanted = m.ReplayRequest.model_validate(await _json_body(call))
    except ValidationError as error:
        raise _invalid(error) from None
    ids = wanted.ids or await _matching_ids(call, wanted.filter or m.FailureQuery())
    results = await replay(
        call.ctx.sessions,
        ids,
        call.ctx.clock(),
        secrets_for=replay_secrets(call.ctx.settings),
        adapters=call.ctx.adapters,
    )
    if any(result.created_command_ids for result in results):
        call.ctx.wake_dispatcher()
    items = [m.ReplayItem.model_validate(asdict(result)) for result in results]
    succeeded = sum(item.outcome in SUCCESS for item in items)
    call.details.update(requested=len(ids), succeeded=succeeded, failed=len(items) - succeeded)
    return m.ReplayResponse(results=items, succeeded=succeeded, failed=len(items) - succeeded)


async def _matching_ids(call: Call, query: m.FailureQuery) -> list[int]:
    where = FailureFilter(query.failure_class, query.provider, query.tenant, query.store, query.since)
    async with call.ctx.sessions() as session:
        return [view.id for view in await list_failures(session, where, query.limit)]


# -- validation profiles ----------------------------------------------------------------------


async def list_profile_rows(call: Call) -> m.ProfileList:
    """`GET /v1/admin/profiles?provider=&tenant=`."""
    async with call.ctx.sessions() as session:
        stored = await profiles.list_profiles(session, _query(call, "provider"), _query(call, "tenant"))
    call.details.update(count=len(stored))
    return m.ProfileList(
        profiles=[_profile_out(profile) for profile in stored],
        known_rules=sorted(rule.value for rule in profiles.RULES),
    )


async def put_profile(call: Call) -> m.ProfileModel:
    """`PUT /v1/admin/profiles`: store (replace) the profile of one provider and tenant."""
    try:
        body = m.ProfileModel.model_validate(await _json_body(call))
    except ValidationError as error:
        raise _invalid(error) from None
    decisions = {rule: profiles.Decision(value) for rule, value in body.rules.items()}
    profile = profiles.ValidationProfile(body.provider, body.tenant, decisions)
    async with call.ctx.sessions() as session:
        try:
            await profiles.save_profile(session, profile, call.ctx.clock())
        except ValueError as error:
            raise AdminError(422, "invalid_body", str(error)[:300]) from None
        await session.commit()
    call.details.update(provider=body.provider, tenant=body.tenant)
    return body


def _profile_out(profile: profiles.ValidationProfile) -> m.ProfileModel:
    rules: dict[str, Any] = {rule: decision.value for rule, decision in profile.rules.items()}
    return m.ProfileModel(provider=profile.provider, tenant=profile.tenant, rules=rules)


ROUTES = [
    Route("/v1/admin/mappings", endpoint("mappings.list", list_mapping_rows), methods=["GET"]),
    Route("/v1/admin/mappings", endpoint("mappings.upsert", upsert_mappings), methods=["PUT"]),
    Route("/v1/admin/mappings", endpoint("mappings.delete", delete_mapping_rows), methods=["DELETE"]),
    Route("/v1/admin/failures", endpoint("failures.list", list_failure_rows), methods=["GET"]),
    Route("/v1/admin/failures/replay", endpoint("failures.replay", replay_failures), methods=["POST"]),
    Route("/v1/admin/failures/{failure_id}", endpoint("failures.show", show_failure), methods=["GET"]),
    Route("/v1/admin/profiles", endpoint("profiles.list", list_profile_rows), methods=["GET"]),
    Route("/v1/admin/profiles", endpoint("profiles.put", put_profile), methods=["PUT"]),
]
