"""Every vendor adapter the gateway knows, by the name used in its webhook URLs."""

from __future__ import annotations

from posgate.gateway.adapters.base import Adapter
from posgate.gateway.adapters.shopify import ShopifyAdapter
from posgate.gateway.adapters.square import SquareAdapter
from posgate.gateway.adapters.standard import StandardAdapter
from posgate.gateway.adapters.toast import ToastAdapter
from posgate.gateway.adapters.zettle import ZettleAdapter

ADAPTERS: dict[str, Adapter] = {
    "square": SquareAdapter(),
    "shopify": ShopifyAdapter(),
    "toast": ToastAdapter(),
    "zettle": ZettleAdapter(),
    "standard": StandardAdapter(),
}
