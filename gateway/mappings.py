"""Vendor id → canonical id mappings: upsert, bulk load, delete, list, and snapshots.

The adapters are pure, so the pipeline loads every mapping of one (provider, merchant)
into a `MappingSnapshot` before calling them. A merchant's catalogue is thousands of rows
at most, which one indexed query reads; the snapshot also makes a transform see one
consistent state even when mappings change while it runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from posgate.gateway.tables import MappingKind, UnmappedSkuPolicy, mapping_versions, mappings

_KINDS = frozenset({MappingKind.TENANT, MappingKind.STORE, MappingKind.SKU})
# Rows per INSERT statement in a bulk load; keeps under SQLite's bound-parameter limit.
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class MappingEntry:
    """One vendor id and the canonical id it stands for.

    Attributes:
        provider: Registry name of the vendor.
        merchant_id: The vendor's merchant / account id.
        kind: `tenant`, `store` or `sku`.
        vendor_id: The vendor's store or item id; empty for a `tenant` mapping (the merchant
            itself is the vendor id).
        canonical_id: The posgate tenant, store or SKU.

    """

    provider: str
    merchant_id: str
    kind: str
    vendor_id: str
    canonical_id: str

    @property
    def key(self) -> tuple[str, str, str, str]:
        """What makes a mapping unique: (provider, merchant, kind, vendor id)."""
        return (self.provider, self.merchant_id, self.kind, self.vendor_id)

    def row(self, now: datetime) -> dict[str, object]:
        """Its `gw_mappings` values, stamped `now`."""
        return {
            "provider": self.provider,
            "merchant_id": self.merchant_id,
            "kind": self.kind,
            "vendor_id": self.vendor_id,
            "canonical_id": self.canonical_id,
            "updated_at": now,
        }

    def normalized(self) -> MappingEntry:
        """Check the kind and blank the vendor id of a tenant mapping.

        Raises:
            ValueError: Unknown kind, or an empty id where one is required.

        """
        if self.kind not in _KINDS:
            raise ValueError(f"unknown mapping kind {self.kind!r}")
        vendor_id = "" if self.kind == MappingKind.TENANT else self.vendor_id
        if not (self.provider and self.merchant_id and self.canonical_id) or (
            self.kind != MappingKind.TENANT and not vendor_id
        ):
            raise ValueError(f"incomplete mapping {self!r}")
        return MappingEntry(self.provider, self.merchant_id, self.kind, vendor_id, self.canonical_id)


class MappingSnapshot:
    """A `MappingLookup` over the mappings of one (provider, merchant), loaded at once."""

    def __init__(
        self,
        provider: str,
        merchant_id: str,
        entries: Iterable[MappingEntry],
        unmapped_sku: str = UnmappedSkuPolicy.REVIEW,
    ) -> None:
        """Index `entries`; lookups outside (provider, merchant) return None.

        `unmapped_sku` is the account's policy for unknown items (`posgate.gateway.mapping_policies`).
        """
        self._provider = provider
        self._merchant_id = merchant_id
        self._ids = {(entry.kind, entry.vendor_id): entry.canonical_id for entry in entries}
        self.unmapped_sku = unmapped_sku

    def covers(self, provider: str, merchant_id: str) -> bool:
        """Whether this is the snapshot of (provider, merchant)."""
        return (provider, merchant_id) == (self._provider, self._merchant_id)

    def _get(self, provider: str, merchant_id: str, kind: str, vendor_id: str) -> str | None:
        if not self.covers(provider, merchant_id):
            return None
        return self._ids.get((kind, vendor_id))

    def tenant(self, provider: str, merchant_id: str) -> str | None:
        """The tenant a vendor merchant belongs to."""
        return self._get(provider, merchant_id, MappingKind.TENANT, "")

    def store(self, provider: str, merchant_id: str, vendor_store_id: str) -> str | None:
        """The canonical store of a vendor location."""
        return self._get(provider, merchant_id, MappingKind.STORE, vendor_store_id)

    def sku(self, provider: str, merchant_id: str, vendor_item_id: str) -> str | None:
        """The canonical SKU of a vendor item."""
        return self._get(provider, merchant_id, MappingKind.SKU, vendor_item_id)


async def snapshot(
    session: AsyncSession, provider: str, merchant_id: str, unmapped_sku: str = UnmappedSkuPolicy.REVIEW
) -> MappingSnapshot:
    """Every mapping of (provider, merchant) as a `MappingLookup`."""
    entries = await list_mappings(session, provider, merchant_id)
    return MappingSnapshot(provider, merchant_id, entries, unmapped_sku)


async def list_mappings(
    session: AsyncSession, provider: str, merchant_id: str, kind: str | None = None
) -> list[MappingEntry]:
    """The mappings of (provider, merchant), optionally of one kind, in a stable order."""
    query = select(mappings).where(mappings.c.provider == provider, mappings.c.merchant_id == merchant_id)
    if kind is not None:
        query = query.where(mappings.c.kind == kind)
    query = query.order_by(mappings.c.kind, mappings.c.vendor_id)
    rows = (await session.execute(query)).all()
    return [
        MappingEntry(row.provider, row.merchant_id, row.kind, row.vendor_id, row.canonical_id) for row in rows
    ]


async def upsert(session: AsyncSession, entries: Sequence[MappingEntry], now: datetime) -> int:
    """Insert or update `entries` (a bulk load); the caller commits. Returns how many.

    Raises:
        ValueError: An entry is incomplete or of an unknown kind (nothing is written).

    """
    checked = [entry.normalized() for entry in entries]
    # The last entry for a key wins, as in a file loaded top to bottom.
    unique = {e.key: e for e in checked}
    rows = [e.row(now) for e in unique.values()]
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    for start in range(0, len(rows), _CHUNK):
        statement = dialect.insert(mappings).values(rows[start : start + _CHUNK])
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=["provider", "merchant_id", "kind", "vendor_id"],
                set_={
                    "canonical_id": statement.excluded.canonical_id,
                    "updated_at": statement.excluded.updated_at,
                },
            )
        )
    await bump_versions(session, {(e.provider, e.merchant_id) for e in unique.values()})
    return len(rows)


async def delete_mappings(
    session: AsyncSession, provider: str, merchant_id: str, kind: str, vendor_ids: Sequence[str]
) -> int:
    """Delete mappings of one (provider, merchant, kind); the caller commits. Returns how many."""
    if kind == MappingKind.TENANT:
        vendor_ids = [""]
    result = await session.execute(
        delete(mappings).where(
            mappings.c.provider == provider,
            mappings.c.merchant_id == merchant_id,
            mappings.c.kind == kind,
            mappings.c.vendor_id.in_(list(vendor_ids)),
        )
    )
    deleted = int(getattr(result, "rowcount", 0) or 0)
    if deleted:
        await bump_versions(session, {(provider, merchant_id)})
    return deleted


async def bump_versions(session: AsyncSession, merchants: Iterable[tuple[str, str]]) -> None:
    """Record that the mappings of each (provider, merchant) changed, in the caller's transaction.

    Cached snapshots of those merchants (`posgate.gateway.mapping_cache`) are stale from the
    commit on.
    """
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    for provider, merchant_id in sorted(merchants):
        statement = dialect.insert(mapping_versions).values(
            provider=provider, merchant_id=merchant_id, version=1
        )
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=["provider", "merchant_id"],
                set_={"version": mapping_versions.c.version + 1},
            )
        )
