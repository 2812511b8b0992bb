"""Records level changes: per-store sequence numbers, the change log and outbox events.

Every writer follows one lock order so that concurrent transactions never deadlock and
commit in sequence order per store: claim idempotency first, then `allocate` the store
sequence rows (sorted), then touch stock rows (sorted), then `record` the changes. The
store-sequence row lock is held until commit, so a reader that has seen sequence N of a
store can never later find a committed change below N.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from google.protobuf.message import Message
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from posgate.bus.outbox import add_events
from posgate.bus.ports import OutgoingEvent
from posgate.contracts import events
from posgate.runtime.correlation import current_correlation_id
from posgate.services.inventory import convert
from posgate.services.inventory.domain import Alert, Kind, Level
from posgate.services.inventory.sql import upsert
from posgate.services.inventory.tables import changes, store_sequences

StoreKey = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Change:
    """One committed level change of one position, with its per-store sequence number."""

    level: Level
    delta: int
    cause: Kind
    idempotency_key: str
    event_id: str


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """A threshold crossing or a negative-stock flag to announce."""

    level: Level
    alert: Alert | None
    threshold: int
    negative_key: str = ""


async def allocate(session: AsyncSession, counts: Counter[StoreKey]) -> dict[StoreKey, int]:
    """Reserve `counts[store]` consecutive sequence numbers per store; return the first of each.

    Takes the store rows' locks in sorted order (see the module docstring).
    """
    first: dict[StoreKey, int] = {}
    for tenant_id, store_id in sorted(counts):
        n = counts[(tenant_id, store_id)]
        statement = (
            upsert(session, store_sequences)
            .values(tenant_id=tenant_id, store_id=store_id, last_sequence=n)
            .on_conflict_do_update(
                index_elements=["tenant_id", "store_id"],
                set_={"last_sequence": store_sequences.c.last_sequence + n},
            )
            .returning(store_sequences.c.last_sequence)
        )
        last = int((await session.execute(statement)).scalar_one())
        first[(tenant_id, store_id)] = last - n + 1
    return first


COMMITTED = "posgate.inventory.changes"


def recorded_changes(session: AsyncSession) -> list[Change]:
    """The changes recorded in this session's transaction; read them after it committed.

    Streams are fed from here right after the commit, before the event has gone through
    the broker, so watchers on this replica see a change at once.
    """
    found: list[Change] = session.info.get(COMMITTED, [])
    return found


async def record(session: AsyncSession, recorded: Sequence[Change], alerts: Iterable[AlertEvent]) -> None:
    """Append the changes to the change log and their events to the outbox (same transaction)."""
    session.info.setdefault(COMMITTED, []).extend(recorded)
    if recorded:
        await session.execute(
            insert(changes),
            [
                {
                    "tenant_id": change.level.position.tenant_id,
                    "store_id": change.level.position.store_id,
                    "sequence": change.level.sequence,
                    "sku": change.level.position.sku,
                    "on_hand": change.level.on_hand,
                    "reserved": change.level.reserved,
                    "delta": change.delta,
                    "cause": change.cause.value,
                    "event_id": change.event_id,
                    "count_version": change.level.count_version,
                    "committed_at": change.level.updated_at,
                }
                for change in recorded
            ],
        )
    outgoing = [_stock_changed(change) for change in recorded]
    outgoing.extend(_alert(alert) for alert in alerts)
    await add_events(session, outgoing)


def outgoing(
    payload: Message, tenant_id: str, store_id: str, occurred_at: datetime, event_id: str | None = None
) -> OutgoingEvent:
    """An inventory event for the outbox: the envelope, partitioned by (tenant, store)."""
    envelope = events.new_envelope(
        payload,
        tenant_id=tenant_id,
        store_id=store_id,
        correlation_id=current_correlation_id() or "",
        occurred_at=occurred_at,
    )
    if event_id is not None:
        envelope.event_id = event_id
    return OutgoingEvent(
        event_id=envelope.event_id,
        event_type=envelope.event_type,
        routing_key=envelope.event_type,
        body=envelope.SerializeToString(),
        partition_key=f"{tenant_id}/{store_id}",
    )


def _event(payload: Message, level: Level, event_id: str | None = None) -> OutgoingEvent:
    position = level.position
    return outgoing(payload, position.tenant_id, position.store_id, level.updated_at, event_id)


def _stock_changed(change: Change) -> OutgoingEvent:
    payload = events.pb.StockChanged(
        level=convert.level_to_pb(change.level),
        cause=convert.cause_to_pb(change.cause),
        delta=change.delta,
        idempotency_key=change.idempotency_key,
    )
    return _event(payload, change.level, change.event_id)


def _alert(alert: AlertEvent) -> OutgoingEvent:
    level = convert.level_to_pb(alert.level)
    payload: Message
    if alert.alert is None:
        payload = events.pb.NegativeStockFlagged(level=level, idempotency_key=alert.negative_key)
    elif alert.alert is Alert.OUT:
        payload = events.pb.OutOfStock(level=level, threshold=alert.threshold)
    elif alert.alert is Alert.LOW:
        payload = events.pb.LowStock(level=level, threshold=alert.threshold)
    else:
        payload = events.pb.BackInStock(level=level, threshold=alert.threshold)
    return _event(payload, alert.level)
