"""Contract tests for the event envelope (`posgate.contracts.events`) and the common helpers."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given
from hypothesis import strategies as st

from posgate.contracts import common, events, inventory, orders

# Routing keys the services and subscribers rely on (docs/events.md).
REQUIRED_ROUTING_KEYS = {
    "inventory.stock_changed",
    "inventory.low_stock",
    "inventory.out_of_stock",
    "inventory.back_in_stock",
    "inventory.negative_stock_flagged",
    "orders.received",
    "orders.accepted",
    "orders.routed",
    "orders.status_changed",
    "orders.cancelled",
    "returns.authorized",
    "returns.completed",
    "returns.reconciliation_discrepancy",
    "stores.status_changed",
    "catalog.menu_updated",
    "integration.failed",
}


def test_every_envelope_payload_has_a_domain_event_routing_key() -> None:
    oneof = events.pb.EventEnvelope.DESCRIPTOR.oneofs_by_name[events.PAYLOAD_ONEOF]
    assert set(events.ROUTING_KEYS) == {f.name for f in oneof.fields}
    for field in oneof.fields:
        key = events.ROUTING_KEYS[field.name]
        assert re.fullmatch(r"[a-z]+\.[a-z_]+", key), key
        assert key == field.name.replace("_", ".", 1)
        assert field.message_type is not None
        assert field.message_type.file.package == "posgate.events.v1"
    assert len(set(events.ROUTING_KEYS.values())) == len(oneof.fields)
    assert set(events.ROUTING_KEYS.values()) >= REQUIRED_ROUTING_KEYS


def test_envelope_round_trips_with_its_payload() -> None:
    level = inventory.pb.StockLevel(
        key=inventory.pb.StockKey(tenant_id="t1", store_id="s1", sku="SKU-1"),
        on_hand=7,
        reserved=2,
        available=5,
        sequence=42,
    )
    payload = events.pb.StockChanged(level=level, cause=inventory.pb.MOVEMENT_TYPE_SALE, delta=-1)
    occurred = datetime(2025, 1, 31, 12, 0, tzinfo=timezone(timedelta(hours=1)))
    envelope = events.new_envelope(
        payload, tenant_id="t1", store_id="s1", correlation_id="c1", causation_id="x1", occurred_at=occurred
    )

    parsed = events.pb.EventEnvelope.FromString(envelope.SerializeToString())

    assert parsed == envelope
    assert uuid.UUID(parsed.event_id).version == 4
    assert parsed.event_type == "inventory.stock_changed" == events.routing_key_of(parsed)
    assert parsed.schema_version == events.SCHEMA_VERSION
    assert parsed.occurred_at.ToDatetime(tzinfo=UTC) == occurred
    assert (parsed.tenant_id, parsed.store_id, parsed.correlation_id, parsed.causation_id) == (
        "t1",
        "s1",
        "c1",
        "x1",
    )
    assert events.payload_of(parsed) == payload


def test_new_envelope_defaults_occurred_at_to_now_in_utc_and_fresh_ids() -> None:
    before = datetime.now(UTC)
    first = events.new_envelope(events.pb.OrderAccepted(order_id="o1"), tenant_id="t1")
    second = events.new_envelope(events.pb.OrderAccepted(order_id="o1"), tenant_id="t1")
    stamped = first.occurred_at.ToDatetime(tzinfo=UTC)
    assert before - timedelta(seconds=1) <= stamped <= datetime.now(UTC)
    assert first.event_id != second.event_id
    assert events.routing_key_of(first) == "orders.accepted"
    assert events.routing_key_for(events.pb.IntegrationFailed()) == "integration.failed"


def test_new_envelope_refuses_a_message_that_is_not_an_event() -> None:
    with pytest.raises(TypeError):
        events.new_envelope(orders.pb.Order(), tenant_id="t1")
    with pytest.raises(ValueError, match="no payload"):
        events.routing_key_of(events.pb.EventEnvelope())


def test_common_helpers_enforce_the_conventions() -> None:
    assert common.money(1250, "EUR") == common.pb.Money(amount_minor=1250, currency_code="EUR")
    with pytest.raises(TypeError):
        common.money(12.5, "EUR")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        common.money(1, "eur")
    assert common.quantity(3).units == 3
    assert common.quantity("0.250").decimal == "0.250"
    with pytest.raises(ValueError):
        common.quantity("1e3")
    with pytest.raises(ValueError):
        common.timestamp(datetime(2025, 1, 1))  # naive on purpose
    with pytest.raises(ValueError):
        common.command_meta("", common.pb.Source(provider="p"))
    meta = common.command_meta("k1", common.pb.Source(provider="p", tenant_id="t1"), correlation_id="c")
    assert (meta.idempotency_key, meta.source.tenant_id, meta.correlation_id) == ("k1", "t1", "c")


@given(
    moment=st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    offset_minutes=st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59),
)
def test_a_timestamp_is_the_one_from_datetime_gives(moment: datetime, offset_minutes: int) -> None:
    aware = moment.replace(tzinfo=timezone(timedelta(minutes=offset_minutes)))
    expected = Timestamp()
    expected.FromDatetime(aware.astimezone(UTC))

    assert common.timestamp(aware) == expected
    into = common.pb.Source()
    assert common.stamp_into(into.received_at, aware) == expected
    assert into.received_at.ToDatetime(tzinfo=UTC) == aware
