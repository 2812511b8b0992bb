"""One streamed change (`Item`), built once and shared by every stream that sends it.

Fan-out costs a reference per subscriber, not a message. Items come from this process's
commits, from `inventory.stock_changed` events (the bus), and from the change log, whose rows
hold those same events (`stream_log`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from posgate.contracts import events, inventory
from posgate.services.inventory import convert, journal

pb = inventory.pb


@dataclass(slots=True)
class Item:
    """One change as streamed: the response is shared, never copied, across subscribers."""

    store_id: str
    sequence: int
    sku: str
    response: inventory.pb.WatchStockResponse
    _serialized: bytes | None = field(default=None, compare=False, repr=False)

    def serialized(self) -> bytes:
        """The response's wire bytes, computed once for every stream that sends it."""
        if self._serialized is None:
            self._serialized = self.response.SerializeToString()
        return self._serialized


def change_item(level: inventory.pb.StockLevel, cause: Any, delta: int, event_id: str) -> Item:
    """An item for a change of `level` (the message is kept by reference, not copied)."""
    response = pb.WatchStockResponse(
        change=pb.StockChange(level=level, cause=cause, delta=delta, event_id=event_id)
    )
    return Item(level.key.store_id, level.sequence, level.key.sku, response)


def item_from_change(change: journal.Change) -> Item:
    """An item for a change committed in this process."""
    return change_item(
        convert.level_to_pb(change.level), convert.cause_to_pb(change.cause), change.delta, change.event_id
    )


def decode_stock_changed(body: bytes) -> tuple[str, list[Item]] | None:
    """The tenant and the changes (in order) of an `inventory.stock_changed` envelope; None for others.

    Reads both schema versions: several changes in `changes` (2), or one in the single fields (1).

    Raises:
        google.protobuf.message.DecodeError: The body is not an envelope.

    """
    envelope = events.pb.EventEnvelope.FromString(body)
    if envelope.WhichOneof(events.PAYLOAD_ONEOF) != "inventory_stock_changed":
        return None
    payload = envelope.inventory_stock_changed
    entries = payload.changes or [payload]
    items = [change_item(e.level, e.cause, e.delta, envelope.event_id) for e in entries]
    return envelope.tenant_id or payload.level.key.tenant_id, items
