"""Wires the routing component: orders, and the store status and catalog it routes by.

The routing service owns order intake and store choice, which read store status and the
catalog, so `StoreService` and `CatalogService` are served by the same component. The three
services are declared in the contracts; until their issues implement them no servicer is
registered, so health and reflection list them and gRPC answers each RPC UNIMPLEMENTED.
"""

from __future__ import annotations

from posgate.components import Component, Dependencies
from posgate.contracts import catalog, routing, stores
from posgate.runtime.server import ComponentSpec


def component(deps: Dependencies) -> Component:
    """The routing component: RoutingService, StoreService and CatalogService."""
    return Component(
        ComponentSpec(
            name="routing",
            registrations=[],
            service_names=[routing.SERVICE_NAME, stores.SERVICE_NAME, catalog.SERVICE_NAME],
            probes=deps.probes(),
        )
    )
