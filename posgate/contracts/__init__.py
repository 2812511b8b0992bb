"""Facades over the generated Protobuf code in ``gen/`` (see docs/contracts.md).

Hand-written code imports contracts from here, never from ``posgate.<domain>.v1`` directly::

    from posgate.contracts import inventory

    level = inventory.pb.StockLevel(on_hand=3)
    inventory.grpc_api.add_InventoryServiceServicer_to_server(servicer, server)

Each domain module exposes ``pb`` (messages and enums) and, where the package declares a
service, ``grpc_api`` (stubs, servicer base classes, ``add_*_to_server``).
"""

from __future__ import annotations

#: The Protobuf domains, one package ``posgate.<domain>.v1`` each.
DOMAINS: tuple[str, ...] = (
    "common",
    "orders",
    "inventory",
    "stores",
    "catalog",
    "routing",
    "returns",
    "events",
)

__all__ = ["DOMAINS"]
