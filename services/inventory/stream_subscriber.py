"""One `WatchStock` stream's state inside the hub: its filter, a bounded queue, and a waiter.

Kept small on purpose (the hub aims at 10,000 streams per process): the queue holds shared
`Item` references, and a waiter future exists only while the stream is idle.
"""

from __future__ import annotations

import asyncio
from collections import deque

from posgate.errors import DomainError, ResourceExhausted
from posgate.services.inventory.stream_log import Item


class Subscriber:
    """The hub's side of one stream.

    Attributes:
        tenant_id: The tenant watched.
        stores: The stores watched; None for every store of the tenant.
        skus: The SKUs watched; None for every SKU.
        ready: Whether the stream's initial read has been attached to the hub.
        skip: Per store, the last sequence the initial read already covered; queued changes
            at or below it are dropped. An entry goes once a later change passes it.

    """

    __slots__ = ("_limit", "_queue", "_waiter", "error", "ready", "skip", "skus", "stores", "tenant_id")

    def __init__(
        self, tenant_id: str, stores: frozenset[str] | None, skus: frozenset[str] | None, limit: int
    ) -> None:
        """A stream of `tenant_id` whose queue holds at most `limit` undelivered changes."""
        self.tenant_id = tenant_id
        self.stores = stores
        self.skus = skus
        self.ready = False
        self.skip: dict[str, int] = {}
        self.error: DomainError | None = None
        self._limit = limit
        self._queue: deque[Item] = deque()
        self._waiter: asyncio.Future[None] | None = None

    def queued(self) -> list[Item]:
        """The changes waiting to be sent (a copy)."""
        return list(self._queue)

    def offer(self, item: Item) -> None:
        """Queue a change of a watched store if its SKU is watched; end the stream when full."""
        if self.error is not None or (self.skus is not None and item.sku not in self.skus):
            return
        if len(self._queue) >= self._limit:
            # The client resumes from its last sequence and loses nothing; the hub stays fast.
            self.fail(ResourceExhausted("the stream fell too far behind", reason="STREAM_TOO_SLOW"))
            return
        self._queue.append(item)
        self._wake()

    def fail(self, error: DomainError) -> None:
        """End the stream with `error` as soon as it next asks for a change."""
        if self.error is None:
            self.error = error
            self._queue.clear()
            self._wake()

    async def next(self) -> Item:
        """The next change to send, in order, skipping what the initial read already covered.

        Raises:
            DomainError: The stream was ended (too slow, a gap it cannot fill, shutdown).

        """
        while True:
            if self.error is not None:
                raise self.error
            if not self._queue:
                self._waiter = asyncio.get_running_loop().create_future()
                try:
                    await self._waiter
                finally:
                    self._waiter = None
                continue
            item = self._queue.popleft()
            covered = self.skip.get(item.store_id) if self.skip else None
            if covered is not None:
                if item.sequence <= covered:
                    continue
                del self.skip[item.store_id]
            return item

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
