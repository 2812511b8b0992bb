"""The transactional outbox: producers add events in the same transaction as their state change."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from sqlalchemy import TextClause, insert, text
from sqlalchemy.ext.asyncio import AsyncSession

from posgate.bus.ports import OutgoingEvent
from posgate.db import raw
from posgate.db.raw import PositionalSql
from posgate.db.tables import outbox

__all__ = ["OutgoingEvent", "add_events"]

# PostgreSQL: one statement for the whole batch, each column bound as one array, so the cost
# per event is an array element rather than a parameter set (rows keep the array order).
_INSERT_MANY_SQL = (
    "INSERT INTO event_outbox (event_id, event_type, routing_key, partition_key, headers, body,"
    " created_at, published_at, attempts)"
    " SELECT e, t, r, p, CAST(h AS json), b, c, NULL, 0"
    " FROM unnest(CAST(:event_id AS text[]), CAST(:event_type AS text[]), CAST(:routing_key AS text[]),"
    " CAST(:partition_key AS text[]), CAST(:headers AS text[]), CAST(:body AS bytea[]),"
    " CAST(:created_at AS timestamptz[])) WITH ORDINALITY AS row(e, t, r, p, h, b, c, n) ORDER BY n"
)
_INSERT_MANY = PositionalSql.of(text(_INSERT_MANY_SQL))


@functools.cache
def _positional(sql: str) -> PositionalSql:
    """`sql` compiled once (the `along` statements are a few fixed texts)."""
    return PositionalSql.of(text(sql))


async def add_events(
    session: AsyncSession,
    events: Sequence[OutgoingEvent],
    *,
    along: tuple[TextClause, Mapping[str, object]] | None = None,
) -> None:
    """Insert `events` into the outbox inside the caller's open transaction.

    Nothing is committed here: the events become visible to the relay exactly when (and only
    if) the caller commits its state change.

    Args:
        session: The caller's session, inside the transaction that changes state.
        events: Events in the order they must be published.
        along: On PostgreSQL only: another write (a statement returning nothing, whose
            parameter names differ from the outbox's) and its parameters, sent with the events
            as one statement (one round trip instead of two).

    """
    if along is not None:
        statement, parameters = along
        if not events:
            await raw.fetch(session, _positional(statement.text), parameters)
            return
        together = _positional(f"WITH along AS ({statement.text}) {_INSERT_MANY_SQL}")
        await raw.fetch(session, together, {**parameters, **_columns(events, datetime.now(UTC))})
        return
    if not events:
        return
    now = datetime.now(UTC)
    if session.get_bind().dialect.name == "postgresql":
        await raw.fetch(session, _INSERT_MANY, _columns(events, now))
        return
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


def _columns(events: Sequence[OutgoingEvent], now: datetime) -> dict[str, list[object]]:
    """The events column-wise, for `_INSERT_MANY`."""
    return {
        "event_id": [event.event_id for event in events],
        "event_type": [event.event_type for event in events],
        "routing_key": [event.routing_key for event in events],
        "partition_key": [event.partition_key for event in events],
        "headers": [json.dumps(dict(event.headers)) for event in events],
        "body": [event.body for event in events],
        "created_at": [event.created_at or now for event in events],
    }
