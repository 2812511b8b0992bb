"""What every HTTP handler reaches through `request.app.state.ctx`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from posgate.gateway.adapters.base import Adapter
from posgate.gateway.claims import LeasingDispatcher
from posgate.settings import Settings


def utc_now() -> datetime:
    """The current time in UTC (the default clock)."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class GatewayContext:
    """The gateway process's resources, shared by all requests.

    Attributes:
        settings: The process settings.
        sessions: Database sessions.
        adapters: Vendor adapters by provider name.
        clock: Current UTC time (tests pass a fixed one).
        wake_dispatcher: Called after commands were committed, so they are sent at once.
        hand_over: The process's dispatcher, if it has one: webhook commands are then stored
            leased to it and handed over after their commit, saving a claim.

    """

    settings: Settings
    sessions: async_sessionmaker[AsyncSession]
    adapters: Mapping[str, Adapter]
    clock: Callable[[], datetime] = utc_now
    wake_dispatcher: Callable[[], None] = field(default=lambda: None)
    hand_over: LeasingDispatcher | None = None
