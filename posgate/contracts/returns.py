"""Facade for ``posgate.returns.v1``: returns at the register and register (Z report) reconciliation.

``pb`` holds the messages and enums; ``grpc_api`` holds ``ReturnsServiceStub``,
``ReturnsServiceServicer`` and ``add_ReturnsServiceServicer_to_server``.
"""

from __future__ import annotations

from posgate.returns.v1 import returns_pb2 as pb
from posgate.returns.v1 import returns_pb2_grpc as grpc_api

SERVICE_NAME = "posgate.returns.v1.ReturnsService"

__all__ = ["SERVICE_NAME", "grpc_api", "pb"]
