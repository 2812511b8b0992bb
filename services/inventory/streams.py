"""The `WatchStock` hub: registers streams, reads where they start, and fans changes out to them.

Changes enter through `publish` (committed by this process) and `on_event` (committed by any
replica, through RabbitMQ); `stream_order` puts them in per-store sequence order, once each,
from the point the hub started tracking a store (its "origin"). A stream registers before its
initial read, so the changes committed during the read wait in its queue; it then reads itself
the range between its read and the origin, if any, and skips what its read already covered.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence

from google.protobuf.message import DecodeError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from posgate.bus.ports import IncomingEvent
from posgate.contracts import inventory
from posgate.errors import Unavailable
from posgate.services.inventory import journal, stream_log
from posgate.services.inventory.stream_handoff import StreamHandoff
from posgate.services.inventory.stream_log import Item
from posgate.services.inventory.stream_order import Sequencer, Tenant
from posgate.services.inventory.stream_reads import SharedReads
from posgate.services.inventory.stream_subscriber import Subscriber

log = logging.getLogger(__name__)
DEFAULT_QUEUE_LIMIT = 1024


class StockHub:
    """Serves `WatchStock` streams from local commits, bus events and the change log."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], *, queue_limit: int = DEFAULT_QUEUE_LIMIT
    ) -> None:
        """Stream from the database behind `sessions`; a stream holds at most `queue_limit` changes."""
        self._sessions = sessions
        self._queue_limit = queue_limit
        self._tenants: dict[str, Tenant] = {}
        self._order = Sequencer(sessions)
        self.reads = SharedReads(sessions)

    async def start(self) -> None:
        """Accept streams (the hub needs no background work until a store falls behind)."""
        self._order.stopping = False

    async def stop(self) -> None:
        """End every stream with UNAVAILABLE (clients resume elsewhere) and stop gap reads."""
        self._order.stopping = True
        for tenant in list(self._tenants.values()):
            for subscriber in [*tenant.wide, *(s for st in tenant.stores.values() for s in st.subscribers)]:
                subscriber.fail(Unavailable("inventory is shutting down", reason="STREAM_CLOSED"))
            # A copy: streams ending while this awaits untrack their stores.
            for store in list(tenant.stores.values()):
                await self._order.stop(store)

    def publish(self, changes: Sequence[journal.Change]) -> None:
        """Pass on changes just committed by this process (call it after the commit)."""
        if not self._tenants:
            # Nobody here watches anything: a bulk commit's thousands of changes are not looked at.
            return
        for change in changes:
            position = change.level.position
            if self._wants(position.tenant_id, position.store_id):
                self._accept(position.tenant_id, stream_log.item_from_change(change))

    async def on_event(self, event: IncomingEvent) -> None:
        """Take an `inventory.stock_changed` event from the bus (a broadcast listener callback).

        An event whose store nobody here watches, or whose changes were all passed on already
        (this replica committed them and published them locally), is dropped undecoded.
        """
        if self._passed(event.headers):
            return
        try:
            decoded = stream_log.decode_stock_changed(event.body)
        except DecodeError:
            log.warning("stock hub: undecodable event %s dropped", event.event_id)
            return
        if decoded is None:
            return
        tenant_id, items = decoded
        for item in items:
            if self._wants(tenant_id, item.store_id):
                self._accept(tenant_id, item)

    def _passed(self, headers: Mapping[str, str]) -> bool:
        """Whether the headers show the event holds nothing new for the streams here."""
        tenant_id, store_id = headers.get(journal.TENANT_HEADER), headers.get(journal.STORE_HEADER)
        last = headers.get(journal.LAST_SEQUENCE_HEADER)
        if tenant_id is None or store_id is None or last is None or not last.isdigit():
            return False
        tenant = self._tenants.get(tenant_id)
        if tenant is None or not (tenant.wide or store_id in tenant.stores):
            return True
        store = tenant.stores.get(store_id)
        return store is not None and store.last is not None and store.last >= int(last)

    async def resync(self) -> None:
        """Catch up every watched store from the change log (after a bus reconnect lost events)."""
        rows = await stream_log.read_store_sequences(self._sessions, self._tenants)
        for tenant_id, store_id, last in rows:
            tenant = self._tenants.get(tenant_id)
            if tenant is None:
                continue
            store = tenant.track(store_id) if tenant.wide_ready else tenant.stores.get(store_id)
            if store is not None and store.last is not None and last > store.last:
                self._order.catch_up(store, last)

    async def watch(
        self, request: inventory.pb.WatchStockRequest
    ) -> AsyncIterator[inventory.pb.WatchStockResponse]:
        """A stream: replays and a snapshot, then every change (`InventoryApp.watch`)."""
        subscriber = self._subscribe(request)
        try:
            async for message in self._initial(subscriber, request):
                yield message
            while True:
                yield (await subscriber.next()).response
        finally:
            self._unregister(subscriber)

    async def watch_handoff(
        self, request: inventory.pb.WatchStockRequest
    ) -> AsyncIterator[inventory.pb.WatchStockResponse | StreamHandoff]:
        """Like `watch`, but once live the stream is handed over: the last item is a `StreamHandoff`.

        The stream edge then pushes every change itself, with no task per stream; the handoff
        owns the subscription from then on and ends it with `detach()`.
        """
        subscriber = self._subscribe(request)
        handed = False
        try:
            async for message in self._initial(subscriber, request):
                yield message
            handed = True
            yield StreamHandoff(subscriber, self._unregister)
        finally:
            if not handed:
                self._unregister(subscriber)

    def _subscribe(self, request: inventory.pb.WatchStockRequest) -> Subscriber:
        subscriber = Subscriber(
            request.tenant_id,
            frozenset(request.store_ids) or None,
            frozenset(request.skus) or None,
            self._queue_limit,
        )
        self._register(subscriber)
        return subscriber

    async def _initial(
        self, subscriber: Subscriber, request: inventory.pb.WatchStockRequest
    ) -> AsyncIterator[inventory.pb.WatchStockResponse]:
        """Replays and the snapshot, then whatever the hub had not tracked yet when the read ran."""
        initial = await self.reads.read(
            subscriber.tenant_id, subscriber.stores, subscriber.skus, dict(request.resume_after)
        )
        fills = self._attach(subscriber, initial)
        for item in initial.replay:
            yield item.response
        for message in stream_log.snapshot_messages(initial.levels, initial.snapshot_sequences):
            yield message
        for store_id, after, upto in fills:
            async for item in self._read_range(subscriber, store_id, after, upto):
                yield item.response

    def subscriber_count(self) -> int:
        """How many streams are registered (for metrics and leak tests)."""
        streams: set[Subscriber] = set()
        for tenant in self._tenants.values():
            streams.update(tenant.wide)
            for store in tenant.stores.values():
                streams.update(store.subscribers)
        return len(streams)

    def tracked_stores(self) -> int:
        """How many stores the hub currently tracks."""
        return sum(len(t.stores) for t in self._tenants.values())

    async def _read_range(
        self, subscriber: Subscriber, store_id: str, after: int, upto: int
    ) -> AsyncIterator[Item]:
        while after < upto:
            items = await stream_log.read_changes(
                self._sessions, subscriber.tenant_id, store_id, after=after, upto=upto, skus=subscriber.skus
            )
            if not items:
                return
            for item in items:
                yield item
            after = items[-1].sequence

    def _register(self, subscriber: Subscriber) -> None:
        tenant = self._tenants.get(subscriber.tenant_id)
        if tenant is None:
            tenant = self._tenants[subscriber.tenant_id] = Tenant(subscriber.tenant_id)
        if subscriber.stores is None:
            tenant.wide.add(subscriber)
            return
        for store_id in subscriber.stores:
            tenant.track(store_id).subscribers.add(subscriber)

    def _unregister(self, subscriber: Subscriber) -> None:
        tenant = self._tenants.get(subscriber.tenant_id)
        if tenant is None:
            return
        if subscriber.stores is None:
            tenant.wide.discard(subscriber)
            tenant.wide_ready -= int(subscriber.ready)
            candidates = list(tenant.stores.values())
        else:
            candidates = [tenant.stores[s] for s in subscriber.stores if s in tenant.stores]
            for store in candidates:
                store.subscribers.discard(subscriber)
        if not tenant.wide:
            for store in candidates:
                if not store.subscribers:
                    self._order.untrack(store)
        if not tenant.wide and not tenant.stores:
            del self._tenants[tenant.tenant_id]

    def _attach(self, subscriber: Subscriber, initial: stream_log.InitialRead) -> list[tuple[str, int, int]]:
        """Start tracking from the read; return the ranges (after, upto] the stream reads itself."""
        tenant = self._tenants[subscriber.tenant_id]
        seen = initial.sequences
        for store_id, last in seen.items():
            # Registered, or (only a tenant-wide read names others) tracked now.
            store = tenant.track(store_id)
            if store.last is None:
                self._order.initialise(store, last)
        if subscriber.stores is None:
            for store in list(tenant.stores.values()):
                if store.last is None:
                    # Absent from this tenant-wide read: the store had no change yet.
                    self._order.initialise(store, 0)
            tenant.wide_ready += 1
            concern = list(tenant.stores.values())
        else:
            concern = [tenant.stores[s] for s in subscriber.stores]
        subscriber.ready = True
        fills = [
            (s.store_id, seen.get(s.store_id, 0), s.origin)
            for s in concern
            if seen.get(s.store_id, 0) < s.origin
        ]
        # Changes the read already covered: queued ones, or ones the hub has yet to pass on.
        early = {i.store_id for i in subscriber.queued() if i.sequence <= seen.get(i.store_id, 0)}
        subscriber.skip = {
            s: last
            for s, last in seen.items()
            if last > 0 and (s in early or last > (tenant.stores[s].last or 0))
        }
        return fills

    def _wants(self, tenant_id: str, store_id: str) -> bool:
        tenant = self._tenants.get(tenant_id)
        return tenant is not None and (bool(tenant.wide) or store_id in tenant.stores)

    def _accept(self, tenant_id: str, item: Item) -> None:
        self._order.accept(self._tenants[tenant_id].track(item.store_id), item)
