"""Completes Square orders: the fetch step that reads a SubmitOrder's lines from Square.

Square's order webhooks name the order but carry no lines, so the Square adapter's SubmitOrder
is stored `awaiting_fetch`. The gateway's `CommandFetcher` (`posgate.gateway.command_fetch`,
where claims, retries, dead letters and replays are described) runs `OrderLines` for it: it
reads the order with RetrieveOrder (`posgate.gateway.adapters.square.orders_api`) and fills in
lines and totals (`posgate.gateway.adapters.square.order_lines`). Its failures are
`square_order_fetch_refused`, `square_order_fetch_invalid`, `square_order_fetch_exhausted`,
`square_token_missing` and `unmapped_sku`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from posgate.contracts import routing
from posgate.gateway.adapters.base import MappingLookup
from posgate.gateway.adapters.commands import SUBMIT_ORDER
from posgate.gateway.adapters.square.api import EXHAUSTED as _EXHAUSTED
from posgate.gateway.adapters.square.api import ORDER_FETCH
from posgate.gateway.adapters.square.order_lines import complete_order, parse_retrieved
from posgate.gateway.adapters.square.orders_api import SquareOrdersClient
from posgate.gateway.claims import Claimed
from posgate.gateway.command_fetch import CommandFetcher, Fetched

EXHAUSTED = f"{ORDER_FETCH}_{_EXHAUSTED}"


class OrderLines:
    """The `FetchStep` of Square SubmitOrders: RetrieveOrder, then lines and totals."""

    target = SUBMIT_ORDER
    exhausted = EXHAUSTED

    def __init__(self, client: SquareOrdersClient) -> None:
        """Read orders through `client`."""
        self._client = client

    async def fetch(self, sessions: async_sessionmaker[AsyncSession], command: Claimed) -> Fetched:
        """The retrieved order of `command`'s SubmitOrder; raises `FetchError`."""
        del sessions  # the order names all the fetch needs
        request = routing.pb.SubmitOrderRequest.FromString(command.body)
        merchant = request.meta.source.merchant_id
        body = await self._client.retrieve_order(merchant, request.order.external_order_id)

        def complete(lookup: MappingLookup) -> routing.pb.SubmitOrderRequest:
            completed = routing.pb.SubmitOrderRequest()
            completed.CopyFrom(request)
            completed.order.CopyFrom(complete_order(request.order, parse_retrieved(body), lookup, merchant))
            return completed

        return Fetched(merchant, complete)


class OrderFetcher(CommandFetcher):
    """A `CommandFetcher` of Square orders only (the gateway runs one fetcher for every kind)."""

    name = "gateway-order-fetch"

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], client: SquareOrdersClient, **options: Any
    ) -> None:
        """Fetch orders through `client`; `options` are `CommandFetcher`'s."""
        super().__init__(sessions, [OrderLines(client)], **options)
