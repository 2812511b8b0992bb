"""What every admin endpoint shares: bearer authentication, error answers, the audit line.

Every request needs `Authorization: Bearer <token>` with one of `POSGATE_ADMIN_TOKENS`
(compared in constant time). Tokens are never echoed or logged: the audit line of every
admin action names the caller by the token's position (`actor=token#2`).
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from http import HTTPStatus

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse

from posgate.gateway.http import admin_models as m
from posgate.gateway.http.context import GatewayContext
from posgate.settings import Settings

LOG = logging.getLogger("posgate.gateway.admin")
MAX_BODY_BYTES = 32 * 1024 * 1024


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


async def read_body(call: Call) -> bytes:
    """The request body; 400 `body_too_large` over `MAX_BODY_BYTES`."""
    body = await call.request.body()
    if len(body) > MAX_BODY_BYTES:
        raise AdminError(400, "bad_request", "body_too_large")
    return body


async def json_body(call: Call) -> object:
    """The request body as JSON; 400 `invalid_json` if it is not."""
    try:
        return json.loads(await read_body(call))
    except (ValueError, UnicodeDecodeError):
        raise AdminError(400, "bad_request", "invalid_json") from None


def invalid(error: ValidationError, prefix: str = "") -> AdminError:
    """A 422 naming the first field the body got wrong."""
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return AdminError(422, "invalid_body", f"{prefix}{where}: {first['msg']}"[:300])


def query(call: Call, name: str) -> str | None:
    """A query parameter; None when absent or empty."""
    value = call.request.query_params.get(name)
    return value or None
