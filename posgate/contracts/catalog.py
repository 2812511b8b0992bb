"""Facade for ``posgate.catalog.v1``: items, variants, menus, modifier groups, combos and price lists.

``pb`` holds the messages and enums; ``grpc_api`` holds ``CatalogServiceStub``,
``CatalogServiceServicer`` and ``add_CatalogServiceServicer_to_server``.
"""

from __future__ import annotations

from posgate.catalog.v1 import catalog_pb2 as pb
from posgate.catalog.v1 import catalog_pb2_grpc as grpc_api

SERVICE_NAME = "posgate.catalog.v1.CatalogService"

__all__ = ["SERVICE_NAME", "grpc_api", "pb"]
