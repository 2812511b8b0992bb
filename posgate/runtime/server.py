"""Start and stop a posgate gRPC server: the one way every component serves.

Every server gets the standard health service (following the component's dependencies),
server reflection, correlation ids with one log line per RPC, domain-error mapping, caller
authentication outside dev mode, TLS/mTLS when configured, and a graceful stop. Nothing is
global, so several components can run in one process (`posgate dev`).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from grpc_health.v1 import _async as health_aio  # grpc-stubs has no stub for it: typed Any
from grpc_health.v1 import health, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from posgate.runtime.auth import CallerPolicy, ServerConfigurationError
from posgate.runtime.health import DependencyProbe, HealthMonitor
from posgate.runtime.interceptors import RpcInterceptor
from posgate.runtime.tls import server_credentials
from posgate.settings import Settings

_logger = logging.getLogger("posgate.runtime")

# Generated `add_<Service>Servicer_to_server(servicer, server)` functions have this shape.
AddServicer = Callable[[Any, grpc.aio.Server], None]


@dataclass(frozen=True)
class ComponentSpec:
    """What one component serves.

    Attributes:
        name: Component name for logs (`inventory`).
        registrations: `(add_XServicer_to_server, servicer)` pairs to register.
        service_names: Fully-qualified names of those services (`posgate.inventory.v1.
            InventoryService`), published through health and reflection.
        probes: Dependencies that must be up for the component to report SERVING.

    """

    name: str
    registrations: Sequence[tuple[AddServicer, object]]
    service_names: Sequence[str]
    probes: Sequence[DependencyProbe] = field(default_factory=tuple)


@dataclass
class RunningServer:
    """A started server; `port` is the bound port (useful when 0 was asked for)."""

    name: str
    port: int
    server: grpc.aio.Server
    monitor: HealthMonitor
    _stopped: bool = field(default=False, init=False)

    async def stop(self, grace: float | None) -> None:
        """Stop gracefully: health turns NOT_SERVING, new RPCs are refused, in-flight get `grace`.

        Args:
            grace: Seconds in-flight RPCs may still take; None cancels them at once.

        """
        if self._stopped:
            return
        self._stopped = True
        await self.monitor.stop()
        await self.server.stop(grace)
        _logger.info("server stopped component=%s port=%d", self.name, self.port)

    async def wait_for_termination(self) -> None:
        """Wait until the server has stopped."""
        await self.server.wait_for_termination()


def build_interceptors(
    component: str, policy: CallerPolicy | None
) -> list[grpc.aio.ServerInterceptor[Any, Any]]:
    """Return the interceptors every server runs: one, doing all the per-RPC work in one wrapper."""
    return [RpcInterceptor(component, policy)]


async def start_server(spec: ComponentSpec, settings: Settings, *, port: int) -> RunningServer:
    """Build, bind and start a gRPC server for one component.

    Args:
        spec: The services and dependencies of the component.
        settings: Process settings (host, auth, TLS, probe interval).
        port: Port to bind on `settings.grpc_host`; 0 picks a free one.

    Returns:
        The running server, with health already reflecting the first probe round.

    Raises:
        ServerConfigurationError: Outside dev mode without tokens or mTLS, on incomplete TLS
            settings, or when the address cannot be bound.

    """
    policy = CallerPolicy.from_settings(settings)
    credentials = server_credentials(settings)
    # SO_REUSEPORT would let a second process bind the same port silently.
    server = grpc.aio.server(
        interceptors=build_interceptors(spec.name, policy), options=[("grpc.so_reuseport", 0)]
    )
    for add_servicer, servicer in spec.registrations:
        add_servicer(servicer, server)
    health_servicer = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (*spec.service_names, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    bound = _bind(server, f"{settings.grpc_host}:{port}", credentials)
    monitor = HealthMonitor(
        health_servicer,
        spec.service_names,
        spec.probes,
        interval_s=settings.health_probe_interval_s,
        component=spec.name,
    )
    await monitor.mark_not_serving()
    await server.start()
    await monitor.start()
    _logger.info(
        "server started component=%s address=%s:%d tls=%s auth=%s",
        spec.name,
        settings.grpc_host,
        bound,
        "mtls" if settings.tls_client_ca_file else ("on" if credentials else "off"),
        "off (dev mode)" if policy is None else "on",
    )
    return RunningServer(name=spec.name, port=bound, server=server, monitor=monitor)


def _bind(server: grpc.aio.Server, address: str, credentials: grpc.ServerCredentials | None) -> int:
    try:
        if credentials is None:
            bound = server.add_insecure_port(address)
        else:
            bound = server.add_secure_port(address, credentials)
    except RuntimeError as error:
        raise ServerConfigurationError(f"cannot bind {address}: {error}") from error
    if bound == 0:
        raise ServerConfigurationError(f"cannot bind {address}")
    return bound


async def run_until_signalled(servers: Sequence[RunningServer], grace: float) -> None:
    """Serve until SIGTERM or SIGINT, then stop every server gracefully.

    Args:
        servers: Started servers, possibly several components of one process.
        grace: Seconds in-flight RPCs get to finish (`Settings.shutdown_grace_s`).

    """
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    received: list[str] = []

    def on_signal(signum: signal.Signals) -> None:
        received.append(signum.name)
        stopping.set()

    watched = (signal.SIGTERM, signal.SIGINT)
    for signum in watched:
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        await stopping.wait()
    finally:
        for signum in watched:
            loop.remove_signal_handler(signum)
    _logger.info(
        "shutdown requested signal=%s servers=%d grace_s=%g", ",".join(received), len(servers), grace
    )
    await asyncio.gather(*(running.stop(grace) for running in servers))
    _logger.info("shutdown complete")
