"""What every component needs from its process: settings, database and event bus."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from posgate.bus.transport import EventBus
from posgate.runtime.health import DependencyProbe, broker_probe, database_probe
from posgate.runtime.server import ComponentSpec
from posgate.settings import EventTransport, Settings


@dataclass(frozen=True)
class Dependencies:
    """The process-wide resources handed to each component's `component()` builder."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    bus: EventBus

    def probes(self) -> tuple[DependencyProbe, ...]:
        """Health probes for what every component relies on: the database, and the broker if any."""
        database = database_probe(self.engine)
        if self.settings.event_transport is EventTransport.RABBITMQ:
            return (database, broker_probe(self.bus.healthy))
        return (database,)


async def _nothing() -> None:
    return None


@dataclass(frozen=True)
class Component:
    """A component's gRPC surface plus the background work it runs while the process lives.

    Attributes:
        spec: What its gRPC server serves.
        start: Starts background work (after the event bus started, before serving).
        stop: Stops it (after the server stopped taking calls).
        drain: Ends long-lived calls (streams) while the server is still up, so no stream
            handler is still running when the server stops underneath it.

    """

    spec: ComponentSpec
    start: Callable[[], Awaitable[None]] = _nothing
    stop: Callable[[], Awaitable[None]] = _nothing
    drain: Callable[[], Awaitable[None]] = _nothing
    # Extra listeners it opens in `start` (the inventory's stream edge), name → bound port.
    listening: dict[str, int] = field(default_factory=dict)
