"""Square (Square Point of Sale, Orders, Inventory, Catalog and Refunds webhooks)."""

from __future__ import annotations

from posgate.gateway.adapters.square.adapter import SquareAdapter

__all__ = ["SquareAdapter"]
