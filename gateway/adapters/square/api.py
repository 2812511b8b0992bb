"""What every call to Square's REST API shares: per-merchant tokens, headers and error classes.

The adapter itself stays pure; the clients built on `SquareApi` (`orders_api`, `catalog_api`)
are what the gateway's fetcher (`posgate.gateway.command_fetch`) calls. Every call carries the
seller's access token as a bearer token and a pinned `Square-Version`; Square answers JSON, or
`{"errors": [{"category", "code", "detail"}]}` with a 4xx/5xx status.

Access tokens are per merchant (each seller authorises posgate separately). They are never
put into an exception, a log line or a failure: errors name the status and Square's error
code only. Each client names its failures with its own prefix (`square_order_fetch`,
`square_catalog_fetch`) followed by one of `UNAVAILABLE` (retryable), `REFUSED`, `INVALID`,
or, for attempts that ran out, `EXHAUSTED`; a merchant without a token is `TOKEN_MISSING`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
from pydantic import SecretStr

from posgate.gateway.adapters.base import FetchError

PROVIDER = "square"
# The API version the models in `models.py` were written against.
SQUARE_VERSION = "2025-01-23"
# Refused for good: the token is invalid or lacks a permission, or the object does not exist.
REFUSED_STATUSES = frozenset({400, 401, 403, 404})
ORDER_FETCH = "square_order_fetch"
CATALOG_FETCH = "square_catalog_fetch"
TOKEN_MISSING = "square_token_missing"  # noqa: S105 - a failure reason, not a secret
UNAVAILABLE, REFUSED, INVALID, EXHAUSTED = "unavailable", "refused", "invalid", "exhausted"
# Every reason a failed fetch is recorded with; replaying such a failure fetches again.
FETCH_REASONS = frozenset(
    {TOKEN_MISSING}
    | {f"{prefix}_{outcome}" for prefix in (ORDER_FETCH, CATALOG_FETCH) for outcome in (REFUSED, INVALID)}
    | {f"{prefix}_{EXHAUSTED}" for prefix in (ORDER_FETCH, CATALOG_FETCH)}
)


class SquareApi:
    """An HTTP client for Square's API that calls it with each merchant's own access token."""

    # The prefix of this client's failure reasons (`square_order_fetch`, …).
    reasons = "square_fetch"

    def __init__(
        self,
        base_url: str,
        tokens: Mapping[str, SecretStr],
        *,
        timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """`tokens` maps Square merchant ids to their access tokens."""
        self._tokens = dict(tokens)
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            timeout=timeout_s,
            transport=transport,
            headers={"Square-Version": SQUARE_VERSION, "Accept": "application/json"},
        )

    def has_token(self, merchant_id: str) -> bool:
        """Whether an access token is configured for `merchant_id`."""
        return merchant_id in self._tokens

    async def _call(self, merchant_id: str, method: str, path: str, body: object = None) -> Any:
        """The decoded JSON answer of one call (`body`, when given, is sent as JSON).

        Raises:
            FetchError: No token (`square_token_missing`), refused (`<prefix>_refused`), Square
                unavailable or unreachable (`<prefix>_unavailable`, retryable), or a body that
                is not JSON (`<prefix>_invalid`).

        """
        token = self._tokens.get(merchant_id)
        if token is None:
            raise FetchError(TOKEN_MISSING, f"merchant {merchant_id}", retryable=False)
        try:
            response = await self._http.request(
                method,
                path,
                json=body,
                headers={"Authorization": f"Bearer {token.get_secret_value()}"},
            )
        except httpx.HTTPError as error:
            # The class only: some transport errors quote the request, headers included.
            raise self.error(UNAVAILABLE, type(error).__name__, retryable=True) from None
        return self._body(response)

    def error(self, outcome: str, detail: str, *, retryable: bool = False) -> FetchError:
        """A `FetchError` of this client: reason `<prefix>_<outcome>`."""
        return FetchError(f"{self.reasons}_{outcome}", detail, retryable=retryable)

    async def close(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    def _body(self, response: httpx.Response) -> Any:
        status = response.status_code
        if status == httpx.codes.TOO_MANY_REQUESTS or httpx.codes.is_server_error(status):
            raise self.error(UNAVAILABLE, _describe(response), retryable=True)
        if status in REFUSED_STATUSES or not httpx.codes.is_success(status):
            raise self.error(REFUSED, _describe(response))
        try:
            return response.json()
        except ValueError:
            raise self.error(INVALID, f"HTTP {status}: body is not JSON") from None


def _describe(response: httpx.Response) -> str:
    """`HTTP 404 NOT_FOUND`: the status and Square's first error code, if the body has one."""
    code = ""
    try:
        errors = response.json().get("errors") or []
        code = str(errors[0].get("code", ""))[:64] if errors else ""
    except (ValueError, AttributeError, TypeError):
        code = ""
    return f"HTTP {response.status_code} {code}".rstrip()
