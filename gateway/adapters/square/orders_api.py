"""Square's Orders API, RetrieveOrder only: the I/O half of completing a Square order.

The adapter itself stays pure; this client is what the gateway's order fetch step
(`posgate.gateway.order_fetch`) calls. RetrieveOrder is `GET /v2/orders/{order_id}` and
answers `{"order": {...}}`. Tokens, headers and error classes: `posgate.gateway.adapters.square.api`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from posgate.gateway.adapters.square.api import ORDER_FETCH, SquareApi


class SquareOrdersClient(SquareApi):
    """Reads orders from Square with each merchant's own access token."""

    reasons = ORDER_FETCH

    async def retrieve_order(self, merchant_id: str, order_id: str) -> Any:
        """The decoded RetrieveOrder response body for `order_id` of `merchant_id`.

        Raises:
            FetchError: No token (`square_token_missing`), refused (`square_order_fetch_refused`),
                Square unavailable or unreachable (`square_order_fetch_unavailable`, retryable), or a
                body that is not JSON (`square_order_fetch_invalid`).

        """
        return await self._call(merchant_id, "GET", f"/v2/orders/{quote(order_id, safe='')}")
