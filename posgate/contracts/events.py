"""Facade for ``posgate.events.v1``: the event envelope and the routing keys of its payloads.

Every event travels in a ``pb.EventEnvelope`` whose ``payload`` oneof holds exactly one event
message. Each payload field carries its bus routing key ``<domain>.<event>`` as the custom
option ``(posgate.events.v1.routing_key)``; this module reads it from the descriptors, so the
proto file stays the single source of truth.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Final, Literal

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from posgate.common.v1 import common_pb2
from posgate.contracts.common import timestamp
from posgate.events.v1 import events_pb2 as pb

#: Name of the envelope's oneof that holds the event message.
PAYLOAD_ONEOF: Final[Literal["payload"]] = "payload"
#: Schema version written into new envelopes.
SCHEMA_VERSION: Final = 1


def _routing_key_option(field: FieldDescriptor) -> str:
    key: str = field.GetOptions().Extensions[pb.routing_key]
    if not key:
        raise RuntimeError(f"envelope payload field {field.name} has no routing_key option")
    return key


def _payload_fields() -> tuple[FieldDescriptor, ...]:
    return tuple(pb.EventEnvelope.DESCRIPTOR.oneofs_by_name[PAYLOAD_ONEOF].fields)


#: Payload field name -> routing key, e.g. "inventory_stock_changed" -> "inventory.stock_changed".
ROUTING_KEYS: Mapping[str, str] = MappingProxyType(
    {field.name: _routing_key_option(field) for field in _payload_fields()}
)
#: Routing key -> payload field name.
PAYLOAD_FIELDS: Mapping[str, str] = MappingProxyType({key: name for name, key in ROUTING_KEYS.items()})
#: Full name of an event message -> payload field name, to place a message in the oneof.
_FIELD_BY_MESSAGE: Mapping[str, str] = MappingProxyType(
    {field.message_type.full_name: field.name for field in _payload_fields() if field.message_type}
)


def routing_key_of(envelope: pb.EventEnvelope) -> str:
    """Return the routing key ``<domain>.<event>`` of the envelope's payload.

    Raises:
        ValueError: the envelope carries no payload.

    """
    field = envelope.WhichOneof(PAYLOAD_ONEOF)
    if field is None:
        raise ValueError("event envelope has no payload")
    return ROUTING_KEYS[field]


def routing_key_for(payload: Message) -> str:
    """Return the routing key of an event message (``pb.StockChanged()`` -> "inventory.stock_changed")."""
    return ROUTING_KEYS[_payload_field_for(payload)]


def payload_of(envelope: pb.EventEnvelope) -> Message:
    """Return the event message held in the envelope's payload oneof.

    Raises:
        ValueError: the envelope carries no payload.

    """
    field = envelope.WhichOneof(PAYLOAD_ONEOF)
    if field is None:
        raise ValueError("event envelope has no payload")
    message: Message = getattr(envelope, field)
    return message


def new_envelope(
    payload: Message,
    *,
    tenant_id: str,
    store_id: str = "",
    correlation_id: str = "",
    causation_id: str = "",
    source: common_pb2.Source | None = None,
    occurred_at: datetime | None = None,
) -> pb.EventEnvelope:
    """Wrap an event message in a new envelope.

    The envelope gets a fresh UUID event id, ``event_type`` set to the payload's routing key,
    the current schema version and ``occurred_at`` (now, UTC, unless given).

    Args:
        payload: one of the event messages of ``posgate.events.v1`` (e.g. ``pb.StockChanged``).
        tenant_id: tenant the event belongs to.
        store_id: store the event concerns (the partition key); empty for tenant-wide events.
        correlation_id: id shared by everything caused by one inbound request.
        causation_id: id of the command or event that caused this one.
        source: provenance of the command that produced the event.
        occurred_at: when the fact happened (timezone-aware); defaults to now.

    Raises:
        TypeError: ``payload`` is not an event message of the envelope.

    """
    field = _payload_field_for(payload)
    envelope = pb.EventEnvelope(
        event_id=str(uuid.uuid4()),
        event_type=ROUTING_KEYS[field],
        occurred_at=timestamp(occurred_at or datetime.now(UTC)),
        tenant_id=tenant_id,
        store_id=store_id,
        correlation_id=correlation_id,
        causation_id=causation_id,
        schema_version=SCHEMA_VERSION,
    )
    if source is not None:
        envelope.source.CopyFrom(source)
    getattr(envelope, field).CopyFrom(payload)
    return envelope


def _payload_field_for(payload: Message) -> str:
    field = _FIELD_BY_MESSAGE.get(payload.DESCRIPTOR.full_name)
    if field is None:
        raise TypeError(f"{payload.DESCRIPTOR.full_name} is not an event payload of EventEnvelope")
    return field


__all__ = [
    "PAYLOAD_FIELDS",
    "PAYLOAD_ONEOF",
    "ROUTING_KEYS",
    "SCHEMA_VERSION",
    "new_envelope",
    "payload_of",
    "pb",
    "routing_key_for",
    "routing_key_of",
]
