"""Puts each watched store's changes in sequence order, once each, reading gaps from the change log.

Changes arrive twice (committed here, and again through RabbitMQ) and out of order (concurrent
commits are published in any order). Per store the `Sequencer` keeps the last sequence it
passed on: a change at or below it is a duplicate, one beyond the next is held back while the
missing range is read from `inv_change_blocks`, which is gap-free and commit-ordered per store
(see `journal`), so once sequence N is known committed every sequence below N is readable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from posgate.errors import Aborted
from posgate.services.inventory import stream_log
from posgate.services.inventory.stream_log import Item
from posgate.services.inventory.stream_subscriber import Subscriber

log = logging.getLogger(__name__)


@dataclass(eq=False, slots=True)
class Tenant:
    """The streams of one tenant and the stores tracked for them."""

    tenant_id: str
    stores: dict[str, TrackedStore] = field(default_factory=dict)
    # Streams watching every store of the tenant, and how many of them finished their read.
    wide: set[Subscriber] = field(default_factory=set)
    wide_ready: int = 0

    def track(self, store_id: str) -> TrackedStore:
        """The store's tracking, started if new: from 0 under a ready tenant-wide stream.

        Stores stay tracked while a tenant-wide stream lives, so a store new to the hub is one
        a ready stream's read did not see: it had no change then, and that stream needs them
        all. Without a ready one, the first read attached says where tracking starts.
        """
        store = self.stores.get(store_id)
        if store is None:
            store = self.stores[store_id] = TrackedStore(self, store_id, last=0 if self.wide_ready else None)
        return store


@dataclass(eq=False, slots=True)
class TrackedStore:
    """One store somebody watches.

    Attributes:
        tenant: The tenant the store belongs to.
        store_id: The store.
        last: Last sequence passed on; None until a stream's initial read says where it stood.
        origin: Where tracking started: subscribers get every change after it.
        target: Highest sequence known committed (the gap reads go up to it).
        pending: Changes held back until the ones before them are passed on.
        subscribers: Streams watching this store by name (tenant-wide ones are on the tenant).
        filling: The task reading a gap, if any.
        tracked: False once nobody watches the store; its gap read then stops.

    """

    tenant: Tenant
    store_id: str
    last: int | None
    origin: int = 0
    target: int = 0
    pending: dict[int, Item] = field(default_factory=dict)
    subscribers: set[Subscriber] = field(default_factory=set)
    filling: asyncio.Task[None] | None = None
    tracked: bool = True


class Sequencer:
    """Orders changes per tracked store and fans each out to the store's subscribers."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        """Read gaps from the database behind `sessions`."""
        self._sessions = sessions
        self.stopping = False

    def accept(self, store: TrackedStore, item: Item) -> None:
        """Pass on `item` if it is next, drop it if already passed, else hold it and read the gap."""
        if store.last is None:
            store.pending[item.sequence] = item
        elif item.sequence == store.last + 1:
            self._advance(store, item)
            self._drain(store)
        elif item.sequence > store.last:
            store.pending[item.sequence] = item
            self.catch_up(store, item.sequence)

    def initialise(self, store: TrackedStore, last: int) -> None:
        """Start passing on the store's changes after `last`, beginning with those held back."""
        store.last = store.origin = last
        self._drain(store)
        if store.pending:
            self.catch_up(store, max(store.pending))

    def catch_up(self, store: TrackedStore, target: int) -> None:
        """Read the changes up to `target` from the log (in the background, once per store)."""
        store.target = max(store.target, target)
        if not self.stopping and (store.filling is None or store.filling.done()):
            store.filling = asyncio.create_task(self._fill(store), name=f"posgate-stock-gap-{store.store_id}")

    def untrack(self, store: TrackedStore) -> None:
        """Forget the store (nobody watches it any more)."""
        store.tracked = False
        store.pending.clear()
        store.tenant.stores.pop(store.store_id, None)
        if store.filling is not None:
            store.filling.cancel()

    async def stop(self, store: TrackedStore) -> None:
        """Stop the store's gap read and wait for it."""
        if store.filling is not None:
            store.filling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await store.filling

    def _advance(self, store: TrackedStore, item: Item) -> None:
        store.last = item.sequence
        for subscriber in store.subscribers:
            subscriber.offer(item)
        for subscriber in store.tenant.wide:
            subscriber.offer(item)

    def _drain(self, store: TrackedStore) -> None:
        """Pass on held changes that are next in line; forget those already passed."""
        pending = store.pending
        while pending and store.last is not None:
            item = pending.pop(store.last + 1, None)
            if item is None:
                break
            self._advance(store, item)
        if pending and store.last is not None:
            for sequence in [s for s in pending if s <= (store.last or 0)]:
                del pending[sequence]

    async def _fill(self, store: TrackedStore) -> None:
        """Read the store's missing changes from the log until it caught up with `target`."""
        failures = 0
        while store.tracked and not self.stopping and store.last is not None and store.last < store.target:
            before = store.last
            try:
                items = await stream_log.read_changes(
                    self._sessions, store.tenant.tenant_id, store.store_id, after=before, upto=store.target
                )
            except Exception:
                failures += 1
                log.exception(
                    "stock streams: cannot read the change log of %s (%d)", store.store_id, failures
                )
                await asyncio.sleep(min(5.0, 0.1 * 2**failures))
                continue
            failures = 0
            if not store.tracked:
                return
            for item in items:
                # Changes may have been passed on directly while the read was under way.
                if item.sequence == store.last + 1:
                    self._advance(store, item)
            self._drain(store)
            if store.last == before:
                self._skip_gap(store)

    def _skip_gap(self, store: TrackedStore) -> None:
        """The log lacks changes it must hold (pruned?): end the store's streams so they resume."""
        log.warning(
            "stock streams: change log of %s lacks sequence %s", store.store_id, (store.last or 0) + 1
        )
        error = Aborted("the change log has a gap; resume to get a snapshot", reason="STREAM_RESYNC")
        for subscriber in [*store.subscribers, *store.tenant.wide]:
            subscriber.fail(error)
        store.last = min(store.pending) - 1 if store.pending else store.target
        self._drain(store)
