"""Applying one event exactly once: inbox de-duplication, handler retries, the dead-letter verdict.

Shared by the RabbitMQ consumer and the in-process transport so both behave the same way.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from posgate.bus.ports import Handler, IncomingEvent, PoisonMessage
from posgate.bus.retry import Backoff, describe_error
from posgate.db.tables import inbox

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Applied:
    """The handler's effect is committed (now, or by an earlier delivery when `duplicate`)."""

    duplicate: bool


@dataclass(frozen=True)
class Rejected:
    """The event can not be applied; it belongs in the dead letters with `reason`."""

    reason: str
    attempts: int


Outcome = Applied | Rejected


class HandlerFailed(Exception):
    """The handler (not the bus's own inbox bookkeeping) raised `cause`."""

    def __init__(self, cause: Exception) -> None:
        """Wrap the handler's exception."""
        super().__init__(describe_error(cause))
        self.cause = cause


async def record_in_inbox(session: AsyncSession, consumer: str, message_id: str) -> bool:
    """Insert (consumer, message_id) into the inbox; False when it was already there."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    # ON CONFLICT DO NOTHING rather than catching the violation: on PostgreSQL a failed INSERT
    # would poison the transaction, and a concurrent twin simply waits for the first to commit.
    result = await session.execute(
        insert(inbox)
        .values(consumer=consumer, message_id=message_id, received_at=datetime.now(UTC))
        .on_conflict_do_nothing()
        .returning(inbox.c.message_id)
    )
    return result.first() is not None


async def apply_once(
    sessions: async_sessionmaker[AsyncSession], consumer: str, event: IncomingEvent, handler: Handler
) -> Applied:
    """Run `handler` in the transaction that records the event in the inbox, then commit.

    Raises:
        HandlerFailed: The handler raised (the transaction is rolled back).
        Exception: The inbox insert or the commit failed (an infrastructure problem).

    """
    async with sessions() as session, session.begin():
        if not await record_in_inbox(session, consumer, event.event_id):
            return Applied(duplicate=True)
        try:
            await handler(event, session)
            # Flush here so the handler's own constraint violations count as handler failures
            # instead of surfacing later from the commit.
            await session.flush()
        except Exception as error:
            raise HandlerFailed(error) from error
    return Applied(duplicate=False)


async def deliver(
    sessions: async_sessionmaker[AsyncSession],
    consumer: str,
    event: IncomingEvent,
    handler: Handler,
    *,
    max_attempts: int,
    backoff: Backoff,
) -> Outcome:
    """Apply `event` with up to `max_attempts` handler runs in all, counting `event.attempt - 1` earlier ones.

    Handler failures are retried here (so later events of the same partition wait behind it);
    `PoisonMessage` is rejected at once. Infrastructure errors propagate to the caller.
    """
    if event.attempt > max_attempts:
        return Rejected(f"delivered {event.attempt - 1} times without being acknowledged", event.attempt - 1)
    attempt = event.attempt
    while True:
        try:
            return await apply_once(sessions, consumer, dataclasses.replace(event, attempt=attempt), handler)
        except HandlerFailed as failure:
            reason = describe_error(failure.cause)
            if isinstance(failure.cause, PoisonMessage) or attempt >= max_attempts:
                return Rejected(reason, attempt)
            log.warning(
                "consumer %s: event %s failed (attempt %d of %d): %s",
                consumer,
                event.event_id,
                attempt,
                max_attempts,
                reason,
            )
        await asyncio.sleep(backoff.delay(attempt))
        attempt += 1
