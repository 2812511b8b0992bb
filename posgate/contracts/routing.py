"""Facade for ``posgate.routing.v1``: order intake, routing to a store and the order lifecycle.

``pb`` holds the messages and enums; ``grpc_api`` holds ``RoutingServiceStub``,
``RoutingServiceServicer`` and ``add_RoutingServiceServicer_to_server``.
"""

from __future__ import annotations

from posgate.routing.v1 import routing_pb2 as pb
from posgate.routing.v1 import routing_pb2_grpc as grpc_api

SERVICE_NAME = "posgate.routing.v1.RoutingService"

__all__ = ["SERVICE_NAME", "grpc_api", "pb"]
