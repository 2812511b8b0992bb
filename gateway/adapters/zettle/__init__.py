"""PayPal Zettle point of sale: Pusher API webhooks (inventory, purchases, products)."""

from __future__ import annotations

from posgate.gateway.adapters.zettle.adapter import ZettleAdapter

__all__ = ["ZettleAdapter"]
