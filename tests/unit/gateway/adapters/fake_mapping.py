"""A hand-written `MappingLookup`: plain dicts keyed exactly as the port's arguments."""

from __future__ import annotations

from dataclasses import dataclass, field

from posgate.gateway.adapters.base import MappingLookup


@dataclass
class FakeMappingLookup(MappingLookup):
    """Vendor id → canonical id from dicts; anything absent is unmapped (None)."""

    tenants: dict[tuple[str, str], str] = field(default_factory=dict)
    stores: dict[tuple[str, str, str], str] = field(default_factory=dict)
    skus: dict[tuple[str, str, str], str] = field(default_factory=dict)

    def tenant(self, provider: str, merchant_id: str) -> str | None:
        return self.tenants.get((provider, merchant_id))

    def store(self, provider: str, merchant_id: str, vendor_store_id: str) -> str | None:
        return self.stores.get((provider, merchant_id, vendor_store_id))

    def sku(self, provider: str, merchant_id: str, vendor_item_id: str) -> str | None:
        return self.skus.get((provider, merchant_id, vendor_item_id))

    def without(self, kind: str, vendor_id: str) -> FakeMappingLookup:
        """A copy in which `vendor_id` (a merchant, store or item id) is unmapped."""
        tenants = {
            key: value
            for key, value in self.tenants.items()
            if not (kind == "tenant" and key[1] == vendor_id)
        }
        stores = {
            key: value for key, value in self.stores.items() if not (kind == "store" and key[2] == vendor_id)
        }
        skus = {key: value for key, value in self.skus.items() if not (kind == "sku" and key[2] == vendor_id)}
        return FakeMappingLookup(tenants, stores, skus)
