"""Facade for ``posgate.orders.v1``: the canonical order (routed by ``posgate.contracts.routing``).

``pb`` holds the messages and enums; the package declares no service.
"""

from __future__ import annotations

from posgate.orders.v1 import orders_pb2 as pb

__all__ = ["pb"]
