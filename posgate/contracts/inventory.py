"""Facade for ``posgate.inventory.v1``: stock levels, movements, counts, reservations and ``WatchStock``.

``pb`` holds the messages and enums; ``grpc_api`` holds ``InventoryServiceStub``,
``InventoryServiceServicer`` and ``add_InventoryServiceServicer_to_server``.
"""

from __future__ import annotations

from posgate.inventory.v1 import inventory_pb2 as pb
from posgate.inventory.v1 import inventory_pb2_grpc as grpc_api

SERVICE_NAME = "posgate.inventory.v1.InventoryService"

__all__ = ["SERVICE_NAME", "grpc_api", "pb"]
