"""Wires the gateway process.

The gateway's vendor endpoints (REST, SOAP, MQTT) arrive with their own issues; today the
process serves the standard health and reflection services over gRPC, so probes and
operators see it, and runs the outbox relay that every process runs.
"""

from __future__ import annotations

from posgate.components import Component, Dependencies
from posgate.runtime.server import ComponentSpec


def component(deps: Dependencies) -> Component:
    """The gateway component: health and reflection only, until the vendor endpoints land."""
    return Component(ComponentSpec(name="gateway", registrations=[], service_names=[], probes=deps.probes()))
