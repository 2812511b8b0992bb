"""Wires the inventory service: servicer, group committer, stock stream hub, expiry sweeper, pruner."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from posgate.components import Component, Dependencies
from posgate.contracts import inventory
from posgate.runtime.server import ComponentSpec
from posgate.services.inventory import ledger
from posgate.services.inventory.batching import GroupCommitter
from posgate.services.inventory.expiry import ReservationSweeper
from posgate.services.inventory.journal import Change
from posgate.services.inventory.pruning import ChangeLogPruner
from posgate.services.inventory.servicer import InventoryApp, InventoryServicer
from posgate.services.inventory.streams import StockHub

STOCK_CHANGED = "inventory.stock_changed"


def component(deps: Dependencies) -> Component:
    """The inventory component: `posgate.inventory.v1.InventoryService` and its background work."""
    hub = StockHub(deps.sessions)

    def on_commit(changes: Sequence[Change]) -> None:
        # Local streams see the change at once; other replicas get it through the broker,
        # which the relay is woken to publish to without waiting for its next poll.
        hub.publish(changes)
        deps.bus.notify_committed()

    committer = GroupCommitter(deps.sessions, ledger.apply_movements, on_commit=on_commit)
    sweeper = ReservationSweeper(deps.sessions, interval_s=deps.settings.reservation_sweep_interval_s)
    retention = timedelta(seconds=deps.settings.inventory_change_retention_s)
    # Often enough that the log never holds much more than the retention, at most every 10 min.
    pruner = ChangeLogPruner(deps.sessions, retention, interval_s=min(retention.total_seconds() / 4, 600.0))
    deps.bus.listen([STOCK_CHANGED], hub.on_event, on_reconnect=hub.resync)
    app = InventoryApp(deps.sessions, committer, hub.watch, on_commit)

    async def start() -> None:
        await hub.start()
        committer.start()
        sweeper.start()
        pruner.start()

    async def stop() -> None:
        await pruner.stop()
        await sweeper.stop()
        await committer.stop()
        await hub.stop()

    spec = ComponentSpec(
        name="inventory",
        registrations=[(inventory.grpc_api.add_InventoryServiceServicer_to_server, InventoryServicer(app))],
        service_names=[inventory.SERVICE_NAME],
        probes=deps.probes(),
    )
    # Streams end before the server stops (drain), and again harmlessly in stop().
    return Component(spec, start, stop, drain=hub.stop)
