"""Square's Orders API, RetrieveOrder only: the I/O half of completing a Square order.

The adapter itself stays pure; this client is what the gateway's order fetcher
(`posgate.gateway.order_fetch`) calls. RetrieveOrder is `GET /v2/orders/{order_id}` with the
seller's access token as a bearer token and a pinned `Square-Version`; it answers
`{"order": {...}}`, or `{"errors": [{"category", "code", "detail"}]}` with a 4xx/5xx status.

Access tokens are per merchant (each seller authorises posgate separately). They are never
put into an exception, a log line or a failure: errors name the status and Square's error
code only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import SecretStr

# The API version the models in `models.py` were written against.
SQUARE_VERSION = "2025-01-23"
# Refused for good: the token is invalid or lacks ORDERS_READ, or the order does not exist.
REFUSED_STATUSES = frozenset({400, 401, 403, 404})


class OrderFetchError(Exception):
    """A RetrieveOrder that did not return an order; `retryable` says whether to try again."""

    def __init__(self, reason: str, detail: str, *, retryable: bool) -> None:
        """`reason` is a stable snake_case code; `detail` names no secret."""
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.retryable = retryable


class SquareOrdersClient:
    """Reads orders from Square with each merchant's own access token."""

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

    async def retrieve_order(self, merchant_id: str, order_id: str) -> Any:
        """The decoded RetrieveOrder response body for `order_id` of `merchant_id`.

        Raises:
            OrderFetchError: No token (`square_token_missing`), refused (`square_order_fetch_refused`),
                Square unavailable or unreachable (`square_order_fetch_unavailable`, retryable), or a
                body that is not JSON (`square_order_fetch_invalid`).

        """
        token = self._tokens.get(merchant_id)
        if token is None:
            raise OrderFetchError("square_token_missing", f"merchant {merchant_id}", retryable=False)
        try:
            response = await self._http.get(
                f"/v2/orders/{quote(order_id, safe='')}",
                headers={"Authorization": f"Bearer {token.get_secret_value()}"},
            )
        except httpx.HTTPError as error:
            # The class only: some transport errors quote the request, headers included.
            raise OrderFetchError(
                "square_order_fetch_unavailable", type(error).__name__, retryable=True
            ) from None
        return _body(response)

    async def close(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()


def _body(response: httpx.Response) -> Any:
    status = response.status_code
    if status == httpx.codes.TOO_MANY_REQUESTS or httpx.codes.is_server_error(status):
        raise OrderFetchError("square_order_fetch_unavailable", _describe(response), retryable=True)
    if status in REFUSED_STATUSES or not httpx.codes.is_success(status):
        raise OrderFetchError("square_order_fetch_refused", _describe(response), retryable=False)
    try:
        return response.json()
    except ValueError:
        raise OrderFetchError(
            "square_order_fetch_invalid", f"HTTP {status}: body is not JSON", retryable=False
        ) from None


def _describe(response: httpx.Response) -> str:
    """`HTTP 404 NOT_FOUND`: the status and Square's first error code, if the body has one."""
    code = ""
    try:
        errors = response.json().get("errors") or []
        code = str(errors[0].get("code", ""))[:64] if errors else ""
    except (ValueError, AttributeError, TypeError):
        code = ""
    return f"HTTP {response.status_code} {code}".rstrip()
