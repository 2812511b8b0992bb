"""Wires the inventory service: servicer, group committer, stock hub and stream edge, sweeper, pruner."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from posgate.components import Component, Dependencies
from posgate.contracts import inventory
from posgate.runtime.auth import CallerPolicy
from posgate.runtime.edge import UNARY_REQUEST_LIMIT, StreamEdge
from posgate.runtime.edge_calls import EdgeMethod, unary_methods
from posgate.runtime.server import ComponentSpec
from posgate.runtime.tls import edge_ssl_context
from posgate.services.inventory import ledger
from posgate.services.inventory.batching import GroupCommitter
from posgate.services.inventory.expiry import ReservationSweeper
from posgate.services.inventory.journal import Change
from posgate.services.inventory.pruning import ChangeLogPruner
from posgate.services.inventory.servicer import InventoryApp, InventoryServicer
from posgate.services.inventory.streams import StockHub

STOCK_CHANGED = "inventory.stock_changed"
WATCH_STOCK_PATH = f"/{inventory.SERVICE_NAME}/WatchStock"


def component(deps: Dependencies) -> Component:
    """The inventory component: `posgate.inventory.v1.InventoryService` and its background work."""
    hub = StockHub(deps.sessions)

    def on_commit(changes: Sequence[Change]) -> None:
        # Local streams see the change at once; other replicas get it through the broker,
        # which the relay is woken to publish to without waiting for its next poll.
        hub.publish(changes)
        deps.bus.notify_committed()

    # SQLite has one writer: lanes would only wait for each other.
    lanes = deps.settings.inventory_commit_lanes if deps.engine.dialect.name == "postgresql" else 1
    committer = GroupCommitter(deps.sessions, ledger.apply_movements, on_commit=on_commit, lanes=lanes)
    sweeper = ReservationSweeper(deps.sessions, interval_s=deps.settings.reservation_sweep_interval_s)
    retention = timedelta(seconds=deps.settings.inventory_change_retention_s)
    # Often enough that the log never holds much more than the retention, at most every 10 min.
    pruner = ChangeLogPruner(deps.sessions, retention, interval_s=min(retention.total_seconds() / 4, 600.0))
    deps.bus.listen([STOCK_CHANGED], hub.on_event, on_reconnect=hub.resync)
    app = InventoryApp(deps.sessions, committer, hub.watch, on_commit, hub.watch_handoff)
    servicer = InventoryServicer(app)
    edge = _stream_edge(deps, servicer)

    async def start() -> None:
        await hub.start()
        committer.start()
        sweeper.start()
        pruner.start()
        if edge is not None and deps.settings.inventory_stream_port is not None:
            port = await edge.start(
                deps.settings.grpc_host, deps.settings.inventory_stream_port, edge_ssl_context(deps.settings)
            )
            built.listening["stream-edge"] = port

    async def drain() -> None:
        # Streams end first (UNAVAILABLE: clients resume elsewhere), then the edge closes.
        await hub.stop()
        if edge is not None:
            await edge.drain(deps.settings.shutdown_grace_s)

    async def stop() -> None:
        if edge is not None:
            await drain()
        await pruner.stop()
        await sweeper.stop()
        await committer.stop()
        await hub.stop()

    spec = ComponentSpec(
        name="inventory",
        registrations=[(inventory.grpc_api.add_InventoryServiceServicer_to_server, servicer)],
        service_names=[inventory.SERVICE_NAME],
        probes=deps.probes(),
    )
    # Streams end before the server stops (drain), and again harmlessly in stop().
    built = Component(spec, start, stop, drain=drain)
    return built


def _stream_edge(deps: Dependencies, servicer: InventoryServicer) -> StreamEdge | None:
    """The stream edge (`POSGATE_INVENTORY_STREAM_PORT`): `WatchStock` and every unary method."""
    if deps.settings.inventory_stream_port is None:
        return None
    watch = EdgeMethod(
        WATCH_STOCK_PATH, inventory.pb.WatchStockRequest.FromString, servicer.watch_stock_handoff
    )
    service = inventory.pb.DESCRIPTOR.services_by_name["InventoryService"]
    unary = unary_methods(service, servicer, request_limit=UNARY_REQUEST_LIMIT)
    return StreamEdge("inventory", [watch, *unary], CallerPolicy.from_settings(deps.settings))
