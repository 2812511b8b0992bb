"""Facade for ``posgate.stores.v1``: store profiles, operating status and capacity.

``pb`` holds the messages and enums; ``grpc_api`` holds ``StoreServiceStub``,
``StoreServiceServicer`` and ``add_StoreServiceServicer_to_server``.
"""

from __future__ import annotations

from posgate.stores.v1 import stores_pb2 as pb
from posgate.stores.v1 import stores_pb2_grpc as grpc_api

SERVICE_NAME = "posgate.stores.v1.StoreService"

__all__ = ["SERVICE_NAME", "grpc_api", "pb"]
