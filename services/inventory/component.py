"""Wires the inventory gRPC service into a server.

`posgate.inventory.v1.InventoryService` is declared in the contracts; until the inventory
issue implements it no servicer is registered, so health and reflection list the service
and gRPC itself answers each RPC with UNIMPLEMENTED.
"""

from __future__ import annotations

from posgate.components import Dependencies
from posgate.contracts import inventory
from posgate.runtime.server import ComponentSpec


def component(deps: Dependencies) -> ComponentSpec:
    """The inventory component: `posgate.inventory.v1.InventoryService`."""
    return ComponentSpec(
        name="inventory", registrations=[], service_names=[inventory.SERVICE_NAME], probes=deps.probes()
    )
