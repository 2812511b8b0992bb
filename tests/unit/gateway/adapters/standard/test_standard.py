"""posgate's own webhook: Standard Webhooks signatures and the three canonical event types."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest

from posgate.contracts import inventory, stores
from posgate.gateway.adapters.base import (
    AdapterError,
    InboundRequest,
    MappingMissing,
    PayloadError,
    SignatureError,
)
from tests.unit.gateway.adapters.standard.cases import CASES, MAPPING, MERCHANT, SECRET, sign

ADAPTER = CASES.adapter


def commands_of(fixture: str, mapping=MAPPING):
    request = CASES.delivery(fixture)
    ADAPTER.verify_signature(request, [SECRET], CASES.now)
    return ADAPTER.to_canonical_commands(ADAPTER.parse(request), mapping)


def verify(headers: dict[str, str], body: bytes, secrets: list[bytes], now: datetime) -> None:
    request = InboundRequest("standard", "inventory", "https://gw.example/webhooks", headers, body, now)
    ADAPTER.verify_signature(request, secrets, now)


def reason_of(headers: dict[str, str], body: bytes = b"{}", secrets=(SECRET,), now=CASES.now) -> str:
    with pytest.raises(SignatureError) as caught:
        verify(headers, body, list(secrets), now)
    return caught.value.reason


# The reference library's own test vector (libraries/python/tests/test_webhooks.py, test_sign_function).
REFERENCE_HEADERS = {
    "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
    "webhook-timestamp": "1614265330",
    "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
}
REFERENCE_BODY = b'{"test": 2432232314}'
REFERENCE_NOW = datetime.fromtimestamp(1614265330, tz=UTC)


@pytest.mark.parametrize(
    "secret", [b"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", b"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]
)
def test_the_reference_librarys_test_vector_verifies(secret: bytes) -> None:
    verify(REFERENCE_HEADERS, REFERENCE_BODY, [secret], REFERENCE_NOW)


def test_one_valid_entry_among_several_versions_and_stale_keys_is_enough() -> None:
    entries = [
        "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
        "v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw/enGzPCXe5BdqzCInXqYXFymVJaA7AZdpXwVLPo3mNl8EM+m7TBAg==",
        REFERENCE_HEADERS["webhook-signature"],
    ]
    headers = REFERENCE_HEADERS | {"webhook-signature": " ".join(entries)}
    verify(headers, REFERENCE_BODY, [b"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"], REFERENCE_NOW)


@pytest.mark.parametrize("offset", [timedelta(minutes=-5), timedelta(minutes=5)])
def test_five_minutes_either_way_is_still_fresh(offset: timedelta) -> None:
    verify(
        REFERENCE_HEADERS, REFERENCE_BODY, [b"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"], REFERENCE_NOW + offset
    )


@pytest.mark.parametrize("offset", [timedelta(minutes=-5, seconds=-1), timedelta(minutes=5, seconds=1)])
def test_beyond_five_minutes_either_way_is_stale(offset: timedelta) -> None:
    secrets = (b"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",)
    assert reason_of(REFERENCE_HEADERS, REFERENCE_BODY, secrets, REFERENCE_NOW + offset) == "timestamp_stale"


@pytest.mark.parametrize(
    ("header", "value", "reason"),
    [
        ("webhook-id", "", "missing_signature"),
        ("webhook-timestamp", "", "missing_signature"),
        ("webhook-timestamp", "hello", "malformed_signature"),
        ("webhook-timestamp", "1614265330.5", "malformed_signature"),
        ("webhook-id", "msg.with.dots", "malformed_signature"),
        ("webhook-signature", "v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw", "malformed_signature"),
        ("webhook-signature", "v1,not base64!", "malformed_signature"),
    ],
)
def test_header_faults_have_stable_reasons(header: str, value: str, reason: str) -> None:
    headers = REFERENCE_HEADERS | {header: value}
    secrets = (b"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",)
    assert reason_of(headers, REFERENCE_BODY, secrets, REFERENCE_NOW) == reason


def test_a_secret_that_is_not_whsec_base64_is_a_configuration_fault_never_echoed() -> None:
    with pytest.raises(AdapterError) as caught:
        verify(REFERENCE_HEADERS, REFERENCE_BODY, [b"whsec_not*base64*at*all"], REFERENCE_NOW)
    assert not isinstance(caught.value, SignatureError)
    assert (caught.value.failure_class, caught.value.reason) == ("processing", "invalid_secret")
    assert "not*base64" not in str(caught.value)


def test_counts_become_set_counts_at_the_mapped_store() -> None:
    (command,) = commands_of("inventory_counts.json")
    assert command.target == "posgate.inventory.v1.InventoryService/SetCounts"
    assert (command.tenant_id, command.store_id) == ("tenant-acme", "store-berlin")
    counts = command.message.counts
    assert [(c.key.sku, c.on_hand, c.source_version) for c in counts] == [
        ("ACME-TS-L", 12, 1714555800),
        ("ACME-TS-M", 0, 1714555800),
    ]
    # A count without its own time is taken at the event's timestamp.
    assert [c.counted_at.ToJsonString() for c in counts] == ["2024-05-01T09:30:00Z", "2024-05-01T09:29:41Z"]
    assert command.message.meta.source.provider_event_id.startswith("msg_")


def test_movements_become_apply_movements_keyed_by_the_partners_movement_ids() -> None:
    (command,) = commands_of("inventory_movements.json")
    movements = command.message.movements
    assert [(m.key.sku, m.type, m.delta, m.reference) for m in movements] == [
        ("ACME-TS-L", inventory.pb.MOVEMENT_TYPE_RECEIPT, 24, "PO-8812"),
        ("ACME-TS-M", inventory.pb.MOVEMENT_TYPE_SHRINK, -1, "damaged"),
        ("ACME-TS-M", inventory.pb.MOVEMENT_TYPE_ADJUSTMENT, 2, ""),
    ]
    assert movements[1].occurred_at.ToJsonString() == "2024-05-01T08:02:00Z"
    assert movements[0].occurred_at.ToJsonString() == "2024-05-01T09:31:12Z"
    assert len({m.idempotency_key for m in movements}) == 3


def test_store_status_becomes_set_store_status() -> None:
    (command,) = commands_of("store_status.json")
    assert command.target == "posgate.stores.v1.StoreService/SetStoreStatus"
    request = command.message
    assert (request.tenant_id, request.store_id, request.state) == (
        "tenant-acme",
        "store-berlin",
        stores.pb.STORE_STATE_PAUSED,
    )
    assert (request.reason, request.until.ToJsonString()) == ("power outage", "2024-05-01T11:00:00Z")


def test_a_retry_signed_later_keeps_the_event_identity_and_every_key() -> None:
    body = CASES.body("inventory_movements.json")
    first = CASES.request(body)
    retry = CASES.request(body, sign(body, SECRET, CASES.now + timedelta(minutes=35)))
    ADAPTER.verify_signature(retry, [SECRET], CASES.now + timedelta(minutes=35))
    assert first.headers["webhook-signature"] != retry.headers["webhook-signature"]
    events = [ADAPTER.parse(request) for request in (first, retry)]
    assert events[0].identity == events[1].identity
    keys = [
        [m.idempotency_key for m in ADAPTER.to_canonical_commands(event, MAPPING)[0].message.movements]
        for event in events
    ]
    assert keys[0] == keys[1]


def test_another_webhook_id_is_another_event() -> None:
    body = CASES.body("inventory_movements.json")
    headers = dict(sign(body, SECRET, CASES.now)) | {"webhook-id": "msg_another"}
    first = ADAPTER.to_canonical_commands(ADAPTER.parse(CASES.request(body)), MAPPING)
    second = ADAPTER.to_canonical_commands(ADAPTER.parse(CASES.request(body, headers)), MAPPING)
    assert first[0].idempotency_key != second[0].idempotency_key
    # The movements inside keep the partner's movement ids as keys: stock moves once.
    assert [m.idempotency_key for m in first[0].message.movements] == [
        m.idempotency_key for m in second[0].message.movements
    ]


@pytest.mark.parametrize(
    ("kind", "vendor_id", "reason"),
    [
        ("tenant", MERCHANT, "unmapped_merchant"),
        ("store", "berlin-1", "unmapped_store"),
        ("sku", "TSHIRT-M", "unmapped_sku"),
    ],
)
def test_unmapped_partner_ids_are_mapping_failures(kind: str, vendor_id: str, reason: str) -> None:
    with pytest.raises(MappingMissing) as caught:
        commands_of("inventory_counts.json", MAPPING.without(kind, vendor_id))
    assert (caught.value.reason, caught.value.detail) == (reason, vendor_id)


def test_parsing_needs_the_webhook_id() -> None:
    body = CASES.body("store_status.json")
    headers = {k: v for k, v in sign(body, SECRET, CASES.now).items() if k != "webhook-id"}
    with pytest.raises(PayloadError) as caught:
        ADAPTER.parse(CASES.request(body, headers))
    assert caught.value.reason == "missing_webhook_id"


def test_the_rejected_movement_is_named_in_the_payload_error() -> None:
    with pytest.raises(PayloadError) as caught:
        ADAPTER.parse(CASES.delivery("malformed_sale_with_positive_delta.json"))
    assert "a sale has a negative delta" in caught.value.detail
    assert base64.b64encode(b"posgate standard webhooks test key").decode() not in caught.value.detail


def test_the_schema_partners_are_given_names_the_three_event_types() -> None:
    from posgate.gateway.adapters.standard.models import STANDARD_EVENT

    schema = STANDARD_EVENT.json_schema()
    types = set(schema["discriminator"]["mapping"])
    assert types == {"inventory.counts", "inventory.movements", "store.status"}
