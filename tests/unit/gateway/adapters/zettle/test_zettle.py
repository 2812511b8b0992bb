"""Zettle Pusher webhooks: counts, sales and catalog items, and what is refused."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from posgate.contracts import catalog, inventory
from posgate.gateway.adapters.base import MappingMissing, PayloadError, SignatureError
from posgate.gateway.adapters.zettle.models import InventoryBalanceChanged
from tests.unit.gateway.adapters.zettle.cases import (
    CASES,
    MAPPING,
    ORGANIZATION,
    SECRET,
    STORE_LOCATION,
    TEST_PRODUCT,
    WATCH_35,
)

ADAPTER = CASES.adapter


def commands_of(body: bytes, mapping=MAPPING):
    request = CASES.request(body)
    ADAPTER.verify_signature(request, [SECRET], CASES.now)
    return ADAPTER.to_canonical_commands(ADAPTER.parse(request), mapping)


def edited(fixture: str, **changes) -> bytes:
    """The fixture with fields of its (string) payload changed, re-serialised as Zettle would."""
    raw = json.loads(CASES.body(fixture))
    payload = json.loads(raw["payload"])
    payload.update(changes)
    raw["payload"] = json.dumps(payload)
    return json.dumps(raw).encode()


def test_a_balance_change_is_a_count_of_the_balance_after() -> None:
    (command,) = commands_of(CASES.body("inventory_balance_changed.json"))
    assert command.target == "posgate.inventory.v1.InventoryService/SetCounts"
    (count,) = command.message.counts
    assert (count.key.tenant_id, count.key.store_id, count.key.sku) == (
        "tenant-gadgets",
        "store-edinburgh",
        "WATCH-35",
    )
    assert count.on_hand == 5
    assert count.counted_at.ToJsonString() == "2021-04-19T13:18:11.966Z"
    assert count.source_version == 1618838291966
    assert command.message.meta.source.merchant_id == ORGANIZATION


def test_a_purchase_is_one_sale_movement_per_line() -> None:
    (command,) = commands_of(CASES.body("purchase_created.json"))
    assert command.target == "posgate.inventory.v1.InventoryService/ApplyMovements"
    assert command.store_id == "store-edinburgh"
    movements = command.message.movements
    assert [(m.key.sku, m.type, m.delta) for m in movements] == [
        ("TEST-987", inventory.pb.MOVEMENT_TYPE_SALE, -2),
        ("WHISKEY-50", inventory.pb.MOVEMENT_TYPE_SALE, -1),
    ]
    assert {m.reference for m in movements} == {"7cdf4ae2-a110-11eb-a7f9-24cfef8c2970"}
    assert movements[0].occurred_at.ToJsonString() == "2021-04-19T13:09:40.798Z"
    assert len({m.idempotency_key for m in movements}) == 2


def test_a_refunded_line_puts_the_goods_back_where_they_are_moved_to() -> None:
    raw = json.loads(json.loads(CASES.body("purchase_created.json"))["payload"])
    line = raw["products"][0] | {
        "quantity": "-1",
        "fromLocationUuid": "sold",
        "toLocationUuid": STORE_LOCATION,
    }
    (command,) = commands_of(edited("purchase_created.json", products=[line]))
    (movement,) = command.message.movements
    assert (movement.type, movement.delta, movement.key.sku) == (
        inventory.pb.MOVEMENT_TYPE_RETURN,
        1,
        "TEST-987",
    )


def test_a_custom_amount_moves_no_stock_and_says_so() -> None:
    raw = json.loads(json.loads(CASES.body("purchase_created.json"))["payload"])
    custom = {"id": "2", "name": "Tip", "quantity": "1", "unitPrice": 300, "type": "CUSTOM"}
    (command,) = commands_of(edited("purchase_created.json", products=[raw["products"][0], custom]))
    assert len(command.message.movements) == 1
    assert command.warnings == ("line 2 has no product variant: no stock moved",)


def test_a_fractional_sale_is_refused_rather_than_rounded() -> None:
    raw = json.loads(json.loads(CASES.body("purchase_created.json"))["payload"])
    weighed = raw["products"][0] | {"quantity": "0.5"}
    with pytest.raises(PayloadError) as caught:
        commands_of(edited("purchase_created.json", products=[weighed]))
    assert caught.value.reason == "fractional_quantity"


def test_a_product_is_an_item_with_its_variants_by_mapped_sku() -> None:
    (command,) = commands_of(CASES.body("product_created.json"))
    assert command.target == "posgate.catalog.v1.CatalogService/UpsertItems"
    (item,) = command.message.items
    assert isinstance(item, catalog.pb.Item)
    assert (item.tenant_id, item.sku, item.name, item.category) == (
        "tenant-gadgets",
        "WATCH",
        "Apple watch",
        "Gadgets",
    )
    assert [(v.sku, v.name, dict(v.attributes)) for v in item.variants] == [
        ("WATCH-35", "35mm", {"Size": "35mm"}),
        ("WATCH-40", "40mm", {"Size": "40mm"}),
    ]
    assert command.store_id == ""


@pytest.mark.parametrize(
    ("fixture", "kind", "vendor_id", "reason"),
    [
        ("inventory_balance_changed.json", "tenant", ORGANIZATION, "unmapped_merchant"),
        ("inventory_balance_changed.json", "store", STORE_LOCATION, "unmapped_store"),
        ("inventory_balance_changed.json", "sku", WATCH_35, "unmapped_sku"),
        ("purchase_created.json", "sku", TEST_PRODUCT, "unmapped_sku"),
        ("product_created.json", "sku", WATCH_35, "unmapped_sku"),
    ],
)
def test_unmapped_ids_are_mapping_failures_naming_the_zettle_id(fixture, kind, vendor_id, reason) -> None:
    with pytest.raises(MappingMissing) as caught:
        commands_of(CASES.body(fixture), MAPPING.without(kind, vendor_id))
    assert (caught.value.reason, caught.value.detail) == (reason, vendor_id)


def test_the_payload_is_parsed_a_second_time_into_the_events_model() -> None:
    event = ADAPTER.parse(CASES.delivery("inventory_balance_changed.json"))
    assert isinstance(event.model, InventoryBalanceChanged)
    assert event.model.balance_after[0].variant_uuid == WATCH_35


def test_a_replay_under_a_new_unsigned_message_id_keeps_every_key() -> None:
    original = CASES.body("purchase_created.json")
    raw = json.loads(original)
    raw["messageId"] = "00000000-0000-5000-8000-000000000000"
    replayed = json.dumps(raw).encode()
    # messageId is outside the signed content, so the replay verifies...
    ADAPTER.verify_signature(
        CASES.request(replayed, CASES.sign(original, SECRET, CASES.now)), [SECRET], CASES.now
    )
    # ...and must not become a second sale.
    first, again = commands_of(original), commands_of(replayed)
    assert [m.idempotency_key for m in first[0].message.movements] == [
        m.idempotency_key for m in again[0].message.movements
    ]
    assert first[0].idempotency_key == again[0].idempotency_key


def test_an_envelope_naming_another_organization_than_the_signed_payload_is_refused() -> None:
    raw = json.loads(CASES.body("inventory_balance_changed.json"))
    raw["organizationUuid"] = "99999999-4a18-4282-bbfa-efd5f642ffb7"
    with pytest.raises(PayloadError) as caught:
        ADAPTER.parse(CASES.request(json.dumps(raw).encode()))
    assert caught.value.reason == "organization_mismatch"


def test_a_relabelled_event_name_fails_validation() -> None:
    raw = json.loads(CASES.body("product_created.json"))
    raw["eventName"] = "PurchaseCreated"
    with pytest.raises(PayloadError):
        ADAPTER.parse(CASES.request(json.dumps(raw).encode()))


def test_events_posgate_does_not_act_on_are_recorded_without_a_command() -> None:
    raw = json.loads(CASES.body("inventory_balance_changed.json"))
    raw["eventName"] = "InventoryTrackingStarted"
    event = ADAPTER.parse(CASES.request(json.dumps(raw).encode()))
    assert event.model is None
    assert event.identity.provider_event_id == raw["messageId"]
    assert ADAPTER.to_canonical_commands(event, MAPPING) == []


def test_a_timestamp_too_far_in_the_future_is_stale_too() -> None:
    with pytest.raises(SignatureError) as caught:
        ADAPTER.verify_signature(
            CASES.delivery("purchase_created.json"), [SECRET], CASES.now - timedelta(minutes=20)
        )
    assert caught.value.reason == "timestamp_stale"


def test_a_retry_within_the_day_is_still_accepted() -> None:
    ADAPTER.verify_signature(
        CASES.delivery("purchase_created.json"), [SECRET], CASES.now + timedelta(hours=20)
    )


def test_the_unsigned_test_message_cannot_be_authenticated() -> None:
    test_message = json.dumps(
        {
            "eventName": "TestMessage",
            "organizationUuid": "ef64c5e2-4e16-11e8-9c2d-fa7ae01bbebc",
            "messageId": "0f674460-fab5-11e7-a310-0002ebd6a43c",
            "payload": {"data": "payload"},
        }
    ).encode()
    request = CASES.request(test_message, {"X-iZettle-Signature": "0" * 64})
    with pytest.raises(SignatureError) as caught:
        ADAPTER.verify_signature(request, [SECRET], CASES.now)
    assert caught.value.reason == "signature_mismatch"


def test_an_upper_case_hex_signature_is_accepted() -> None:
    headers = CASES.sign(CASES.body("purchase_created.json"), SECRET, CASES.now)
    upper = {"X-iZettle-Signature": headers["X-iZettle-Signature"].upper()}
    ADAPTER.verify_signature(CASES.request(CASES.body("purchase_created.json"), upper), [SECRET], CASES.now)
