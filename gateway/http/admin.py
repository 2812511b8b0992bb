"""The admin API: failures (list, inspect, replay) and validation profiles.

Mappings live in `admin_mappings`; authentication and auditing in `admin_calls`.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from starlette.routing import Route

from posgate.gateway import profiles
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
from posgate.gateway.http import admin_docs
from posgate.gateway.http import admin_models as m
from posgate.gateway.http.admin_calls import AdminError, Call, endpoint, invalid, json_body, query
from posgate.gateway.http.security import credentials_by_provider
from posgate.settings import Settings

MAX_LIST = 1000
# Row ids are 64-bit: a larger id names no row, and the drivers refuse to bind it.
MAX_ID = 2**63 - 1
# An already resolved failure needs nothing more: replaying it again is not a failure.
SUCCESS = frozenset({"accepted", "requeued", "already_resolved"})

OPENAPI_PATHS = admin_docs.OPENAPI_PATHS
OPENAPI_SCHEMAS = admin_docs.OPENAPI_SCHEMAS


def replay_secrets(settings: Settings) -> CredentialsFor:
    """Each tenant's webhook credential with a provider, as the webhooks see them.

    Auth failures are re-verified with them, and the tenant whose secrets verify is the signer.
    """
    grouped = credentials_by_provider(settings)

    def secrets_for(provider: str) -> Sequence[TenantCredential]:
        return tuple((credential.tenant, credential.secrets) for credential in grouped.get(provider, ()))

    return secrets_for


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
        failure_class=query(call, "class"),
        provider=query(call, "provider"),
        tenant_id=query(call, "tenant"),
        store_id=query(call, "store"),
        since=_since(query(call, "since")),
    )
    limit = _limit(query(call, "limit"))
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
        wanted = m.ReplayRequest.model_validate(await json_body(call))
    except ValidationError as error:
        raise invalid(error) from None
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
        stored = await profiles.list_profiles(session, query(call, "provider"), query(call, "tenant"))
    call.details.update(count=len(stored))
    return m.ProfileList(
        profiles=[_profile_out(profile) for profile in stored],
        known_rules=sorted(rule.value for rule in profiles.RULES),
    )


async def put_profile(call: Call) -> m.ProfileModel:
    """`PUT /v1/admin/profiles`: store (replace) the profile of one provider and tenant."""
    try:
        body = m.ProfileModel.model_validate(await json_body(call))
    except ValidationError as error:
        raise invalid(error) from None
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
    Route("/v1/admin/failures", endpoint("failures.list", list_failure_rows), methods=["GET"]),
    Route("/v1/admin/failures/replay", endpoint("failures.replay", replay_failures), methods=["POST"]),
    Route("/v1/admin/failures/{failure_id}", endpoint("failures.show", show_failure), methods=["GET"]),
    Route("/v1/admin/profiles", endpoint("profiles.list", list_profile_rows), methods=["GET"]),
    Route("/v1/admin/profiles", endpoint("profiles.put", put_profile), methods=["PUT"]),
]
