"""Contract tests for the Protobuf packages in proto/ and their facades in posgate.contracts."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import Descriptor, FieldDescriptor, ServiceDescriptor

from posgate.contracts import DOMAINS, catalog, common, events, inventory, orders, returns, routing, stores

ROOT = Path(__file__).resolve().parents[2]
POOL = descriptor_pool.Default()

# service -> rpc -> (client streaming, server streaming)
SERVICES: dict[str, dict[str, tuple[bool, bool]]] = {
    "posgate.inventory.v1.InventoryService": {
        "ApplyMovements": (False, False),
        "SetCounts": (False, False),
        "GetStock": (False, False),
        "BatchGetStock": (False, False),
        "Reserve": (False, False),
        "Release": (False, False),
        "Commit": (False, False),
        "WatchStock": (False, True),
        "SetThresholds": (False, False),
    },
    "posgate.routing.v1.RoutingService": {
        "SubmitOrder": (False, False),
        "GetOrder": (False, False),
        "ListOrders": (False, False),
        "UpdateOrderStatus": (False, False),
        "CancelOrder": (False, False),
        "QuoteRoute": (False, False),
    },
    "posgate.returns.v1.ReturnsService": {
        "AuthorizeReturn": (False, False),
        "CompleteReturn": (False, False),
        "GetReturn": (False, False),
        "ReconcileRegister": (False, False),
    },
    "posgate.stores.v1.StoreService": {
        "SetStoreStatus": (False, False),
        "GetStoreStatus": (False, False),
        "ListStoreStatuses": (False, False),
        "UpsertStores": (False, False),
    },
    "posgate.catalog.v1.CatalogService": {
        "UpsertItems": (False, False),
        "UpsertMenu": (False, False),
        "GetMenu": (False, False),
        "UpsertPriceList": (False, False),
    },
}
READ_ONLY_RPCS = {
    "GetStock",
    "BatchGetStock",
    "WatchStock",
    "GetOrder",
    "ListOrders",
    "QuoteRoute",
    "GetReturn",
    "GetStoreStatus",
    "ListStoreStatuses",
    "GetMenu",
}
# The only floating-point fields allowed: coordinates and a dimensionless ranking score.
FLOAT_FIELDS_ALLOWED = {
    "posgate.common.v1.GeoPoint.latitude",
    "posgate.common.v1.GeoPoint.longitude",
    "posgate.routing.v1.RouteCandidate.score",
}
PB_MODULES = [common.pb, orders.pb, inventory.pb, stores.pb, catalog.pb, routing.pb, returns.pb, events.pb]


def _all_messages() -> list[Descriptor]:
    found: list[Descriptor] = []

    def walk(message: Descriptor) -> None:
        found.append(message)
        for nested in message.nested_types:
            walk(nested)

    for module in PB_MODULES:
        for message in module.DESCRIPTOR.message_types_by_name.values():
            walk(message)
    return found


def _service(name: str) -> ServiceDescriptor:
    return POOL.FindServiceByName(name)


@pytest.mark.parametrize("service_name", sorted(SERVICES))
def test_services_declare_the_rpcs_with_their_streaming_flags(service_name: str) -> None:
    service = _service(service_name)
    declared = {m.name: (m.client_streaming, m.server_streaming) for m in service.methods}
    assert declared == SERVICES[service_name]


@pytest.mark.parametrize("service_name", sorted(SERVICES))
def test_rpc_messages_follow_the_request_response_naming(service_name: str) -> None:
    for method in _service(service_name).methods:
        assert method.input_type.name == f"{method.name}Request"
        assert method.output_type.name == f"{method.name}Response"
        assert method.input_type.file.package == _service(service_name).file.package


def test_every_state_changing_command_carries_idempotency_key_and_source() -> None:
    meta = POOL.FindMessageTypeByName("posgate.common.v1.CommandMeta")
    assert meta.fields_by_name["idempotency_key"].type == FieldDescriptor.TYPE_STRING
    source = meta.fields_by_name["source"].message_type
    assert source is not None
    assert source.full_name == "posgate.common.v1.Source"
    for service_name in SERVICES:
        for method in _service(service_name).methods:
            fields = method.input_type.fields_by_name
            if method.name in READ_ONLY_RPCS:
                assert "meta" not in fields, method.full_name
            else:
                assert fields["meta"].message_type is meta, method.full_name


def test_source_carries_provider_tenant_merchant_store_event_id_and_version() -> None:
    source = POOL.FindMessageTypeByName("posgate.common.v1.Source")
    expected = {"provider", "tenant_id", "merchant_id", "store_id", "provider_event_id", "entity_version"}
    assert expected <= set(source.fields_by_name)


def test_batched_stock_commands_have_an_idempotency_key_per_item() -> None:
    for name in ("Movement", "StockCount"):
        field = getattr(inventory.pb, name).DESCRIPTOR.fields_by_name["idempotency_key"]
        assert field.type == FieldDescriptor.TYPE_STRING


def test_money_is_int64_minor_units_plus_currency_and_no_money_is_a_float() -> None:
    money = common.pb.Money.DESCRIPTOR
    assert money.fields_by_name["amount_minor"].type == FieldDescriptor.TYPE_INT64
    assert money.fields_by_name["currency_code"].type == FieldDescriptor.TYPE_STRING
    floats = {
        field.full_name
        for message in _all_messages()
        for field in message.fields
        if field.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT)
    }
    assert floats == FLOAT_FIELDS_ALLOWED


def test_quantities_are_integers_or_decimal_strings() -> None:
    quantity = common.pb.Quantity.DESCRIPTOR
    assert quantity.fields_by_name["units"].type == FieldDescriptor.TYPE_INT64
    assert quantity.fields_by_name["decimal"].type == FieldDescriptor.TYPE_STRING
    assert [f.name for f in quantity.oneofs_by_name["value"].fields] == ["units", "decimal"]
    for name in ("on_hand", "reserved", "available"):
        assert inventory.pb.StockLevel.DESCRIPTOR.fields_by_name[name].type == FieldDescriptor.TYPE_INT64


def test_every_point_in_time_is_a_timestamp() -> None:
    for message in _all_messages():
        for field in message.fields:
            if field.name.endswith("_at") or field.name in {"until", "valid_from", "valid_until"}:
                assert field.message_type is not None, field.full_name
                assert field.message_type.full_name == "google.protobuf.Timestamp", field.full_name


def test_order_lifecycle_and_payment_states() -> None:
    statuses = [v.name for v in orders.pb.OrderStatus.DESCRIPTOR.values]
    assert statuses == [
        "ORDER_STATUS_UNSPECIFIED",
        "ORDER_STATUS_RECEIVED",
        "ORDER_STATUS_ACCEPTED",
        "ORDER_STATUS_ROUTED",
        "ORDER_STATUS_SENT_TO_POS",
        "ORDER_STATUS_IN_PREPARATION",
        "ORDER_STATUS_READY",
        "ORDER_STATUS_COMPLETED",
        "ORDER_STATUS_CANCELLED",
    ]
    payment = {v.name for v in orders.pb.PaymentState.DESCRIPTOR.values}
    assert {"PAYMENT_STATE_PREPAID", "PAYMENT_STATE_PAY_AT_COUNTER", "PAYMENT_STATE_FISCALISED"} <= payment


def test_movement_types_cover_the_ledger() -> None:
    names = {v.name.removeprefix("MOVEMENT_TYPE_") for v in inventory.pb.MovementType.DESCRIPTOR.values}
    expected = {"SALE", "RETURN", "RECEIPT", "TRANSFER_IN", "TRANSFER_OUT", "SHRINK", "ADJUSTMENT"}
    assert names == expected | {"UNSPECIFIED"}


@pytest.mark.parametrize(
    ("facade", "service"),
    [
        (inventory, "InventoryService"),
        (routing, "RoutingService"),
        (returns, "ReturnsService"),
        (stores, "StoreService"),
        (catalog, "CatalogService"),
    ],
)
def test_facades_expose_stub_servicer_and_registration(facade: object, service: str) -> None:
    grpc_api = facade.grpc_api  # type: ignore[attr-defined]
    assert hasattr(grpc_api, f"{service}Stub")
    assert hasattr(grpc_api, f"{service}Servicer")
    assert hasattr(grpc_api, f"add_{service}Servicer_to_server")
    assert facade.SERVICE_NAME in SERVICES  # type: ignore[attr-defined]


def test_generated_tree_has_one_package_per_domain_and_do_not_edit_headers() -> None:
    gen = ROOT / "gen" / "posgate"
    assert sorted(p.name for p in gen.iterdir() if p.is_dir() and p.name != "__pycache__") == sorted(DOMAINS)
    files = [p for p in gen.rglob("*") if p.suffix in {".py", ".pyi"} and "__pycache__" not in p.parts]
    assert len(files) == len(DOMAINS) * 6  # 2 __init__.py + *_pb2.py(i) + *_pb2_grpc.py(i)
    for path in files:
        head = "\n".join(path.read_text().splitlines()[:5])
        assert "do not edit" in head.lower(), path
