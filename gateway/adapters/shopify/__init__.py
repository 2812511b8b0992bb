"""Shopify (Admin REST webhooks: inventory levels, orders, refunds, products)."""

from __future__ import annotations

from posgate.gateway.adapters.shopify.adapter import ShopifyAdapter

__all__ = ["ShopifyAdapter"]
