"""Square webhooks: what each documented notification becomes, and what is refused."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from posgate.contracts import catalog, common, inventory, orders, routing
from posgate.gateway.adapters.base import Fetch, MappingMissing, PayloadError, SignatureError
from posgate.gateway.adapters.commands import canonical_order_id
from posgate.gateway.adapters.square.models import CatalogVersionUpdated, RefundEvent, SquareEvent
from tests.unit.gateway.adapters.square.cases import (
    CASES,
    LOCATION,
    MAPPING,
    MERCHANT,
    NOW,
    SECRET,
    URL,
    VARIATION,
    sign,
)

ADAPTER = CASES.adapter
ORDER_ID = "eA3vssLHKJrv9H0IdJCM3gNqfdcZY"


def commands_of(fixture: str, mapping=MAPPING):
    request = CASES.delivery(fixture)
    ADAPTER.verify_signature(request, [SECRET], NOW)
    return ADAPTER.to_canonical_commands(ADAPTER.parse(request), mapping)


def signed(body: bytes) -> object:
    return CASES.request(body, sign(body, SECRET, NOW))


# --- signatures ---------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", CASES.valid)
def test_every_recorded_notification_verifies(fixture: str) -> None:
    ADAPTER.verify_signature(CASES.delivery(fixture), [SECRET], NOW)


def test_the_request_url_is_the_one_square_signed() -> None:
    assert CASES.delivery("order_created.json").url == URL


def test_a_tampered_body_is_refused() -> None:
    request = CASES.delivery("inventory_count_updated.json")
    tampered = replace(request, body=request.body.replace(b'"quantity": "89"', b'"quantity": "99"'))
    with pytest.raises(SignatureError) as caught:
        ADAPTER.verify_signature(tampered, [SECRET], NOW)
    assert caught.value.reason == "signature_mismatch"
    assert caught.value.failure_class == "auth"


def test_a_body_signed_for_another_url_is_refused() -> None:
    request = replace(CASES.delivery("order_created.json"), url="https://elsewhere.example.com/hook")
    with pytest.raises(SignatureError, match="signature_mismatch"):
        ADAPTER.verify_signature(request, [SECRET], NOW)


def test_a_wrong_secret_is_refused_without_revealing_either_secret() -> None:
    wrong = b"not-the-square-signature-key"
    with pytest.raises(SignatureError) as caught:
        ADAPTER.verify_signature(CASES.delivery("order_created.json"), [wrong], NOW)
    assert caught.value.reason == "signature_mismatch"
    assert SECRET.decode() not in str(caught.value)
    assert wrong.decode() not in str(caught.value)


def test_the_second_secret_verifies_during_a_rotation() -> None:
    ADAPTER.verify_signature(CASES.delivery("order_created.json"), [b"the-new-key-not-yet-used", SECRET], NOW)


def test_a_missing_signature_is_refused() -> None:
    request = CASES.request(CASES.body("order_created.json"), {"content-type": "application/json"})
    with pytest.raises(SignatureError) as caught:
        ADAPTER.verify_signature(request, [SECRET], NOW)
    assert caught.value.reason == "missing_signature"


def test_a_signature_that_is_not_ascii_is_malformed_not_a_crash() -> None:
    forged = {"x-square-hmacsha256-signature": "sïgnätüre=="}
    request = CASES.request(CASES.body("order_created.json"), forged)
    with pytest.raises(SignatureError, match="malformed_signature"):
        ADAPTER.verify_signature(request, [SECRET], NOW)


def test_a_notification_older_than_squares_retry_window_is_stale() -> None:
    with pytest.raises(SignatureError) as caught:
        ADAPTER.verify_signature(CASES.delivery("order_created.json"), [SECRET], CASES.stale_now)
    assert caught.value.reason == "timestamp_stale"


# --- inventory.count.updated ----------------------------------------------------------------


def test_an_in_stock_count_becomes_an_absolute_count_at_the_mapped_store() -> None:
    (command,) = commands_of("inventory_count_updated.json")
    assert command.target == "posgate.inventory.v1.InventoryService/SetCounts"
    request = command.message
    assert isinstance(request, inventory.pb.SetCountsRequest)
    # The WASTE count of the same state change is not stock on hand.
    (count,) = request.counts
    assert (count.key.tenant_id, count.key.store_id, count.key.sku) == (
        "tenant-cafe",
        "store-cafe-1",
        "SKU-LATTE",
    )
    assert count.on_hand == 89
    assert count.source_version == 0
    assert count.counted_at.ToJsonString() == "2024-05-14T18:38:45.102960Z"
    assert (command.tenant_id, command.store_id) == ("tenant-cafe", "store-cafe-1")
    source = request.meta.source
    assert (source.provider, source.merchant_id, source.store_id) == ("square", MERCHANT, "store-cafe-1")
    assert source.provider_event_id == "df5f3813-a913-45a1-94e9-fdc3f7d5e3b6"
    assert source.entity_version == "2024-05-14T18:38:45.102960+00:00"
    assert request.meta.idempotency_key == command.idempotency_key
    assert count.idempotency_key not in ("", command.idempotency_key)


def test_two_parses_of_one_delivery_give_the_same_keys() -> None:
    (first,) = commands_of("inventory_count_updated.json")
    (second,) = commands_of("inventory_count_updated.json")
    assert first.idempotency_key == second.idempotency_key
    assert first.message.counts[0].idempotency_key == second.message.counts[0].idempotency_key
    assert first.message == second.message


def test_a_fractional_count_cannot_be_stored_as_whole_units() -> None:
    document = json.loads(CASES.body("inventory_count_updated.json"))
    document["data"]["object"]["inventory_counts"][0]["quantity"] = "2.5"
    event = ADAPTER.parse(signed(json.dumps(document).encode()))
    with pytest.raises(PayloadError) as caught:
        ADAPTER.to_canonical_commands(event, MAPPING)
    assert caught.value.reason == "fractional_quantity"
    assert caught.value.failure_class == "validation"


@pytest.mark.parametrize(
    ("kind", "vendor_id", "reason"),
    [
        ("sku", VARIATION, "unmapped_sku"),
        ("store", LOCATION, "unmapped_store"),
        ("tenant", MERCHANT, "unmapped_merchant"),
    ],
)
def test_an_unmapped_id_is_a_mapping_failure_naming_the_vendor_id(
    kind: str, vendor_id: str, reason: str
) -> None:
    with pytest.raises(MappingMissing) as caught:
        commands_of("inventory_count_updated.json", MAPPING.without(kind, vendor_id))
    assert (caught.value.reason, caught.value.detail) == (reason, vendor_id)
    assert caught.value.failure_class == "mapping"


# --- orders ----------------------------------------------------------------------------------


def test_a_created_order_is_submitted_to_its_store_and_flagged_as_without_lines() -> None:
    (command,) = commands_of("order_created.json")
    assert command.target == "posgate.routing.v1.RoutingService/SubmitOrder"
    request = command.message
    assert isinstance(request, routing.pb.SubmitOrderRequest)
    order = request.order
    assert order.order_id == canonical_order_id("square", MERCHANT, ORDER_ID)
    assert (order.external_order_id, order.pos_order_id) == (ORDER_ID, ORDER_ID)
    assert (order.tenant_id, order.requested_store_id) == ("tenant-cafe", "store-cafe-1")
    assert order.channel == common.pb.CHANNEL_POS
    assert order.created_at.ToJsonString() == "2024-05-14T18:35:21.296Z"
    assert request.meta.source.entity_version == "1"
    assert command.warnings == ("order_lines_not_in_webhook",)
    assert command.fetch == Fetch.ORDER_LINES  # stored awaiting_fetch: the fetcher adds the lines


def test_a_canceled_order_is_cancelled_by_the_id_its_submit_used() -> None:
    submit, cancel = commands_of("order_updated_canceled.json")
    (created,) = commands_of("order_created.json")
    assert cancel.target == "posgate.routing.v1.RoutingService/CancelOrder"
    assert isinstance(cancel.message, routing.pb.CancelOrderRequest)
    assert cancel.message.order_id == created.message.order.order_id
    assert cancel.message.tenant_id == "tenant-cafe"
    # The submit is keyed by the Square order, so the repeat is answered as a duplicate.
    assert submit.idempotency_key == created.idempotency_key
    assert cancel.message.meta.source.entity_version == "4"


def test_a_completed_order_reports_its_status() -> None:
    _, status = commands_of("order_updated_completed.json")
    assert status.target == "posgate.routing.v1.RoutingService/UpdateOrderStatus"
    request = status.message
    assert isinstance(request, routing.pb.UpdateOrderStatusRequest)
    assert request.status == orders.pb.ORDER_STATUS_COMPLETED
    assert request.pos_order_id == ORDER_ID
    assert request.occurred_at.ToJsonString() == "2024-05-14T18:39:01.842Z"


def test_a_draft_order_is_not_submitted() -> None:
    document = json.loads(CASES.body("order_created.json"))
    document["data"]["object"]["order_created"]["state"] = "DRAFT"
    event = ADAPTER.parse(signed(json.dumps(document).encode()))
    assert ADAPTER.to_canonical_commands(event, MAPPING) == []


# --- catalog.version.updated -----------------------------------------------------------------


def catalog_version(event_id: str, updated_at: str = "2024-05-14T17:51:27.000Z"):
    document = json.loads(CASES.body("catalog_version_updated.json"))
    document["event_id"] = event_id
    document["data"]["object"]["catalog_version"]["updated_at"] = updated_at
    (command,) = ADAPTER.to_canonical_commands(ADAPTER.parse(signed(json.dumps(document).encode())), MAPPING)
    return command


def test_a_catalog_version_becomes_an_upsert_without_items_to_fetch() -> None:
    event = ADAPTER.parse(CASES.delivery("catalog_version_updated.json"))
    assert isinstance(event.model, SquareEvent)
    assert isinstance(event.model.payload, CatalogVersionUpdated)
    assert event.identity.entity_version == "2024-05-14T17:51:27+00:00"

    (command,) = ADAPTER.to_canonical_commands(event, MAPPING)

    assert command.target == "posgate.catalog.v1.CatalogService/UpsertItems"
    assert command.fetch == Fetch.CATALOG_ITEMS  # stored awaiting_fetch: the fetcher adds the items
    request = command.message
    assert isinstance(request, catalog.pb.UpsertItemsRequest)
    assert not request.items
    assert (command.tenant_id, command.store_id) == ("tenant-cafe", "")
    source = request.meta.source
    assert (source.provider, source.tenant_id, source.merchant_id) == ("square", "tenant-cafe", MERCHANT)
    assert source.entity_version == "2024-05-14T17:51:27+00:00"
    assert source.provider_event_id == "9e1cb1a8-8f2b-4f1b-bb7b-2c2c3a9ee2f5"
    assert request.meta.idempotency_key == command.idempotency_key


def test_a_catalog_version_is_keyed_by_merchant_and_version_not_by_event() -> None:
    first = catalog_version("event-1")
    assert catalog_version("event-2").idempotency_key == first.idempotency_key
    assert catalog_version("event-3", "2024-05-14T17:59:00.000Z").idempotency_key != first.idempotency_key


def test_a_catalog_version_of_an_unmapped_merchant_is_a_mapping_failure() -> None:
    with pytest.raises(MappingMissing) as caught:
        commands_of("catalog_version_updated.json", MAPPING.without("tenant", MERCHANT))
    assert caught.value.reason == "unmapped_merchant"


# --- accepted, nothing to do -----------------------------------------------------------------


def test_a_completed_refund_is_recorded_without_commands() -> None:
    event = ADAPTER.parse(CASES.delivery("refund_updated.json"))
    assert isinstance(event.model, SquareEvent)
    assert isinstance(event.model.payload, RefundEvent)
    assert event.model.payload.refund.status == "COMPLETED"
    assert event.model.payload.refund.amount_money.amount == 1000
    assert event.identity.entity_version == "10"
    assert ADAPTER.to_canonical_commands(event, MAPPING) == []


def test_an_event_type_posgate_does_not_act_on_is_accepted_and_recorded() -> None:
    event = ADAPTER.parse(CASES.delivery("customer_created.json"))
    assert event.event_type == "customer.created"
    assert event.model is None
    assert event.identity.provider_event_id == "e4b7fb2b-3bf7-4a2f-9c2e-9f5e1d3a6b11"
    assert event.identity.merchant_id == MERCHANT
    assert ADAPTER.to_canonical_commands(event, MAPPING) == []


# --- malformed ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", CASES.malformed)
def test_a_signed_body_of_the_wrong_shape_is_a_payload_error(fixture: str) -> None:
    request = CASES.delivery(fixture)
    ADAPTER.verify_signature(request, [SECRET], NOW)
    with pytest.raises(PayloadError) as caught:
        ADAPTER.parse(request)
    assert caught.value.failure_class == "validation"


@pytest.mark.parametrize("body", [b"", b"{not json", b"[]", b'{"merchant_id": "M", "type": NaN}'])
def test_a_body_that_is_not_a_square_envelope_is_a_payload_error(body: bytes) -> None:
    with pytest.raises(PayloadError):
        ADAPTER.parse(signed(body))
