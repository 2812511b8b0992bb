"""Wires the returns gRPC service into a server.

`posgate.returns.v1.ReturnsService` is declared in the contracts; until the returns issue
implements it no servicer is registered, so health and reflection list the service and
gRPC itself answers each RPC with UNIMPLEMENTED.
"""

from __future__ import annotations

from posgate.components import Component, Dependencies
from posgate.contracts import returns
from posgate.runtime.server import ComponentSpec


def component(deps: Dependencies) -> Component:
    """The returns component: `posgate.returns.v1.ReturnsService`."""
    return Component(
        ComponentSpec(
            name="returns", registrations=[], service_names=[returns.SERVICE_NAME], probes=deps.probes()
        )
    )
