"""One `WatchStock` stream's state inside the hub: its filter, a bounded queue, and a waiter.

Kept small on purpose (the hub aims at 10,000 streams per process): the queue holds shared
`Item` references, and a waiter future exists only while the stream is idle.

A stream is either pulled (its handler awaits `next()`, as on the gRPC port) or pushed (the
stream edge, once the stream is live, takes each change as it is offered, with no task of its
own). A pushed change that the connection cannot take yet waits in the queue until `pump()`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

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

    __slots__ = (
        "_ended",
        "_limit",
        "_push",
        "_queue",
        "_waiter",
        "error",
        "ready",
        "skip",
        "skus",
        "stores",
        "tenant_id",
    )

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
        self._push: Callable[[Item], bool] | None = None
        self._ended: Callable[[DomainError], None] | None = None

    def push_to(self, push: Callable[[Item], bool], ended: Callable[[DomainError], None]) -> None:
        """Deliver from now on by calling `push` (False: not now, keep it), and `ended` on failure.

        What is queued already goes first; call it once the initial read was sent.
        """
        self._push = push
        self._ended = ended
        if self.error is not None:
            ended(self.error)
            return
        self.pump()

    def pump(self) -> None:
        """Push queued changes until the connection takes no more (it calls this again when it can)."""
        push = self._push
        while push is not None and self._queue and self.error is None:
            item = self._queue[0]
            if not self._covered(item) and not push(item):
                return
            self._queue.popleft()

    def queued(self) -> list[Item]:
        """The changes waiting to be sent (a copy)."""
        return list(self._queue)

    def offer(self, item: Item) -> None:
        """Queue a change of a watched store if its SKU is watched; end the stream when full."""
        if self.error is not None or (self.skus is not None and item.sku not in self.skus):
            return
        if self._push is not None and not self._queue and (self._covered(item) or self._push(item)):
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
            if self._ended is not None:
                self._ended(error)

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
            if not self._covered(item):
                return item

    def _covered(self, item: Item) -> bool:
        """Whether the initial read already sent `item` (a later change of its store ends the check)."""
        covered = self.skip.get(item.store_id) if self.skip else None
        if covered is None:
            return False
        if item.sequence <= covered:
            return True
        del self.skip[item.store_id]
        return False

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
