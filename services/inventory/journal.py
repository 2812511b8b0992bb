"""Records level changes: per-store sequence numbers, the change log and outbox events.

Every writer follows one lock order so that concurrent transactions never deadlock and
commit in sequence order per store: claim idempotency first, then `allocate` the store
sequence rows (sorted), then touch stock rows (sorted), then `record` the changes. The
store-sequence row lock is held until commit, so a reader that has seen sequence N of a
store can never later find a committed change below N.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from google.protobuf.message import Message
from sqlalchemy.ext.asyncio import AsyncSession

from posgate.bus.outbox import add_events
from posgate.bus.ports import OutgoingEvent
from posgate.contracts import events, inventory
from posgate.db.bulk import is_postgres, pick
from posgate.runtime.correlation import current_correlation_id
from posgate.services.inventory import bulk, convert
from posgate.services.inventory.domain import Alert, Kind, Level

StoreKey = tuple[str, str]


class Change(NamedTuple):
    """One committed level change of one position, with its per-store sequence number.

    A named tuple (built once per movement, as `domain.Level`): half a dataclass's cost.
    """

    level: Level
    delta: int
    cause: Kind
    idempotency_key: str
    # The id of the `inventory.stock_changed` event carrying the change; set by `record`.
    event_id: str = ""


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """A threshold crossing or a negative-stock flag to announce."""

    level: Level
    alert: Alert | None
    threshold: int
    negative_key: str = ""


async def allocate(session: AsyncSession, counts: Counter[StoreKey]) -> dict[StoreKey, int]:
    """Reserve `counts[store]` consecutive sequence numbers per store; return the first of each.

    One upsert for every store: its rows are processed in the order given, so the store rows'
    locks are taken in sorted order (see the module docstring).
    """
    if not counts:
        return {}
    stores = sorted(counts)
    rows: bulk.Arrays = {
        "tenant_id": [tenant_id for tenant_id, _ in stores],
        "store_id": [store_id for _, store_id in stores],
        "last_sequence": [counts[store] for store in stores],
    }
    allocated = await bulk.write(session, bulk.ALLOCATE, rows)
    return {(t, s): int(last) - counts[(t, s)] + 1 for t, s, last in allocated}


COMMITTED = "posgate.inventory.changes"
STOCK_CHANGED_SCHEMA = 2
"""`inventory.stock_changed` schema version: one event per store and transaction, all its changes."""
TENANT_HEADER = "x-posgate-tenant"
STORE_HEADER = "x-posgate-store"
LAST_SEQUENCE_HEADER = "x-posgate-last-sequence"
"""On `inventory.stock_changed`: the store's highest sequence in the event, readable without
decoding it, so a replica that already passed those changes on drops the event cheaply."""


def recorded_changes(session: AsyncSession) -> list[Change]:
    """The changes recorded in this session's transaction; read them after it committed.

    Streams are fed from here right after the commit, before the event has gone through
    the broker, so watchers on this replica see a change at once.
    """
    found: list[Change] = session.info.get(COMMITTED, [])
    return found


async def record(
    session: AsyncSession, recorded: Sequence[Change], alerts: Iterable[AlertEvent], *, ordered: bool = False
) -> list[inventory.pb.StockLevel]:
    """Append the changes to the change log and their events to the outbox (same transaction).

    One `inventory.stock_changed` event carries every change of one store; each change's
    `event_id` becomes that event's id. Callers either leave every `event_id` empty (each store
    then gets a new one) or set all of them, one id per store (as `EventIds` gives them).
    `ordered`: each store's changes come in sequence order already (the ledger's bulk walk), so
    they are not sorted again.

    Returns:
        Each change's level as its event carries it, in the order given. A caller that answers
        with the same levels copies these: a copy costs about a quarter of filling a new one.

    """
    stamped = _stamped(recorded)
    session.info.setdefault(COMMITTED, []).extend(stamped)
    stores: dict[str, list[tuple[int, Change]]] = {}
    for index, change in enumerate(stamped):
        stores.setdefault(change.event_id, []).append((index, change))
    filled: list[inventory.pb.StockLevel] = [None] * len(stamped)  # type: ignore[list-item]
    groups = list(stores.values()) if ordered else [sorted(group, key=_sequence) for group in stores.values()]
    changed = [_stock_changed(group, filled) for group in groups]
    outgoing = [*changed, *(_alert(alert) for alert in alerts)]
    if not groups:
        await add_events(session, outgoing)
        return filled
    blocks = _block_rows(groups, changed)
    if is_postgres(session):
        # One round trip for the change log and the outbox.
        rows = {f"block_{name}": values for name, values in blocks.items()}
        await add_events(session, outgoing, along=(pick(len(groups), *bulk.BLOCKS_ALONG_EVENTS), rows))
        return filled
    await bulk.write(session, bulk.INSERT_BLOCKS, blocks)
    await add_events(session, outgoing)
    return filled


class EventIds:
    """One new event id per store of a transaction: the id of its `inventory.stock_changed` event."""

    __slots__ = ("_ids",)

    def __init__(self) -> None:
        """No store has an id yet."""
        self._ids: dict[StoreKey, str] = {}

    def of(self, tenant_id: str, store_id: str) -> str:
        """The id of the store's event, made on first use."""
        store = (tenant_id, store_id)
        found = self._ids.get(store)
        if found is None:
            found = self._ids[store] = str(uuid.uuid4())
        return found


def _stamped(recorded: Sequence[Change]) -> list[Change]:
    """The changes, in order, each with the id of its store's event (one new id per store).

    Changes that carry ids already (their maker stamped all of them, one id per store) are
    kept: a bulk call builds a thousand of them, and building each twice was a tenth of its cost.
    """
    if not recorded or recorded[0].event_id:
        return list(recorded)
    ids = EventIds()
    return [
        Change(
            c.level,
            c.delta,
            c.cause,
            c.idempotency_key,
            ids.of(c.level.position.tenant_id, c.level.position.store_id),
        )
        for c in recorded
    ]


def _sequence(item: tuple[int, Change]) -> int:
    return item[1].level.sequence


def _block_rows(
    groups: Sequence[Sequence[tuple[int, Change]]], changed: Sequence[OutgoingEvent]
) -> bulk.Arrays:
    """The change-log rows, column-wise: one per store, its changes in `changed`'s event body.

    The body is the outbox's own bytes: the log costs a row per store and transaction, not
    one per change, and nothing is encoded twice.
    """
    firsts = [group[0][1].level for group in groups]
    lasts = [group[-1][1].level for group in groups]
    return {
        "tenant_id": [level.position.tenant_id for level in lasts],
        "store_id": [level.position.store_id for level in lasts],
        "last_sequence": [level.sequence for level in lasts],
        "first_sequence": [level.sequence for level in firsts],
        "committed_at": [level.updated_at for level in lasts],
        "body": [event.body for event in changed],
    }


def outgoing(
    payload: Message, tenant_id: str, store_id: str, occurred_at: datetime, event_id: str | None = None
) -> OutgoingEvent:
    """An inventory event for the outbox: the envelope, partitioned by (tenant, store)."""
    return _outgoing(_envelope(payload, tenant_id, store_id, occurred_at, event_id), tenant_id, store_id)


def _envelope(
    payload: Message, tenant_id: str, store_id: str, occurred_at: datetime, event_id: str | None
) -> events.pb.EventEnvelope:
    envelope = events.new_envelope(
        payload,
        tenant_id=tenant_id,
        store_id=store_id,
        correlation_id=current_correlation_id() or "",
        occurred_at=occurred_at,
    )
    if event_id is not None:
        envelope.event_id = event_id
    return envelope


def _outgoing(
    envelope: events.pb.EventEnvelope, tenant_id: str, store_id: str, headers: Mapping[str, str] | None = None
) -> OutgoingEvent:
    return OutgoingEvent(
        event_id=envelope.event_id,
        event_type=envelope.event_type,
        routing_key=envelope.event_type,
        body=envelope.SerializeToString(),
        partition_key=f"{tenant_id}/{store_id}",
        headers=headers or {},
    )


def _event(payload: Message, level: Level, event_id: str | None = None) -> OutgoingEvent:
    position = level.position
    return outgoing(payload, position.tenant_id, position.store_id, level.updated_at, event_id)


def _stock_changed(
    group: Sequence[tuple[int, Change]], filled: list[inventory.pb.StockLevel]
) -> OutgoingEvent:
    """One event for the changes of one store (schema version 2), the last repeated on top.

    `group` holds the changes with their places in `filled`, where each one's level message is
    put. Filled in place inside the envelope: a copied payload would copy every change again.
    """
    final = group[-1][1]
    level = final.level
    tenant_id, store_id = level.position.tenant_id, level.position.store_id
    envelope = _envelope(events.pb.StockChanged(), tenant_id, store_id, level.updated_at, final.event_id)
    envelope.schema_version = STOCK_CHANGED_SCHEMA
    payload = envelope.inventory_stock_changed
    add, causes, fill = payload.changes.add, convert.CAUSES, convert.fill_store_level
    moment = level.updated_at
    shared = convert.store_level(tenant_id, store_id, moment)
    for index, change in group:
        # Set one by one: upb takes keyword arguments more slowly than attribute settings.
        added = add()
        added.cause, added.delta, added.idempotency_key = (
            causes[change.cause],
            change.delta,
            change.idempotency_key,
        )
        filled[index] = fill(added.level, change.level, shared, moment)
    payload.level.CopyFrom(filled[group[-1][0]])
    payload.cause, payload.delta, payload.idempotency_key = (
        convert.cause_to_pb(final.cause),
        final.delta,
        final.idempotency_key,
    )
    headers = {TENANT_HEADER: tenant_id, STORE_HEADER: store_id, LAST_SEQUENCE_HEADER: str(level.sequence)}
    return _outgoing(envelope, tenant_id, store_id, headers)


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
