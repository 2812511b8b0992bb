"""The transactional outbox: producers add events in the same transaction as their state change."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from posgate.bus.ports import OutgoingEvent
from posgate.db.tables import outbox

__all__ = ["OutgoingEvent", "add_events"]


async def add_events(session: AsyncSession, events: Sequence[OutgoingEvent]) -> None:
    """Insert `events` into the outbox inside the caller's open transaction.

    Nothing is committed here: the events become visible to the relay exactly when (and only
    if) the caller commits its state change.

    Args:
        session: The caller's session, inside the transaction that changes state.
        events: Events in the order they must be published.

    """
    if not events:
        return
    now = datetime.now(UTC)
    await session.execute(
        insert(outbox),
        [
            {
                "event_id": event.event_id,
                "event_type": event.event_type,
                "routing_key": event.routing_key,
                "partition_key": event.partition_key,
                "headers": dict(event.headers),
                "body": event.body,
                "created_at": event.created_at or now,
                "published_at": None,
                "attempts": 0,
            }
            for event in events
        ],
    )
