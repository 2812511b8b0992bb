"""What happens to a delivery naming a vendor item no mapping knows: review, or create.

`review` (the default) holds the delivery as a `mapping` failure until an operator maps the
item and replays it. `create` maps the vendor item id to the same canonical SKU in the
delivery's transaction and accepts it, for sellers whose item ids are their SKUs. A policy
is set per channel (provider, every merchant) and per account (provider and merchant); the
account's wins. Created mappings never overwrite one an operator stored meanwhile.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from posgate.gateway.mappings import MappingEntry, MappingSnapshot, bump_versions
from posgate.gateway.tables import MappingKind, UnmappedSkuPolicy, mapping_policies, mappings

POLICIES = frozenset({UnmappedSkuPolicy.REVIEW, UnmappedSkuPolicy.CREATE})
# The merchant id of a channel-wide policy.
EVERY_MERCHANT = ""


@dataclass(frozen=True, slots=True)
class PolicyEntry:
    """The unmapped-SKU policy of a channel (`merchant_id` '') or of one account."""

    provider: str
    merchant_id: str
    unmapped_sku: str


async def policy_of(session: AsyncSession, provider: str, merchant_id: str) -> str:
    """The policy that applies to one account: its own, else its channel's, else review."""
    query = select(mapping_policies.c.merchant_id, mapping_policies.c.unmapped_sku).where(
        mapping_policies.c.provider == provider,
        mapping_policies.c.merchant_id.in_([merchant_id, EVERY_MERCHANT]),
    )
    found = {row.merchant_id: row.unmapped_sku for row in await session.execute(query)}
    return str(found.get(merchant_id) or found.get(EVERY_MERCHANT) or UnmappedSkuPolicy.REVIEW)


async def set_policy(session: AsyncSession, entry: PolicyEntry, now: datetime) -> None:
    """Store a policy (the caller commits); cached snapshots it affects become stale.

    Raises:
        ValueError: Unknown policy or empty provider.

    """
    if entry.unmapped_sku not in POLICIES or not entry.provider:
        raise ValueError(f"unmapped_sku must be one of {sorted(POLICIES)} for a named provider")
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(mapping_policies).values(
        provider=entry.provider,
        merchant_id=entry.merchant_id,
        unmapped_sku=entry.unmapped_sku,
        updated_at=now,
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["provider", "merchant_id"],
            set_={
                "unmapped_sku": statement.excluded.unmapped_sku,
                "updated_at": statement.excluded.updated_at,
            },
        )
    )
    # A channel-wide change bumps the channel's own version, which every cached account checks.
    await bump_versions(session, {(entry.provider, entry.merchant_id)})


async def list_policies(session: AsyncSession, provider: str | None = None) -> list[PolicyEntry]:
    """Stored policies, optionally of one provider, channel rows first."""
    query = select(mapping_policies).order_by(mapping_policies.c.provider, mapping_policies.c.merchant_id)
    if provider is not None:
        query = query.where(mapping_policies.c.provider == provider)
    rows = (await session.execute(query)).all()
    return [PolicyEntry(row.provider, row.merchant_id, row.unmapped_sku) for row in rows]


class CreatingLookup:
    """A `MappingLookup` that maps an unknown vendor item to itself and remembers doing so."""

    def __init__(self, snapshot: MappingSnapshot) -> None:
        """Answer from `snapshot`; unknown SKUs of its own merchant are created."""
        self._snapshot = snapshot
        self.created: list[MappingEntry] = []

    def tenant(self, provider: str, merchant_id: str) -> str | None:
        """The tenant a vendor merchant belongs to (never created)."""
        return self._snapshot.tenant(provider, merchant_id)

    def store(self, provider: str, merchant_id: str, vendor_store_id: str) -> str | None:
        """The canonical store of a vendor location (never created)."""
        return self._snapshot.store(provider, merchant_id, vendor_store_id)

    def sku(self, provider: str, merchant_id: str, vendor_item_id: str) -> str | None:
        """The mapped SKU, else the vendor item id itself (recorded in `created`)."""
        found = self._snapshot.sku(provider, merchant_id, vendor_item_id)
        if found is not None or not vendor_item_id or not self._snapshot.covers(provider, merchant_id):
            return found
        self.created.append(
            MappingEntry(provider, merchant_id, MappingKind.SKU, vendor_item_id, vendor_item_id)
        )
        return vendor_item_id


async def create_missing(session: AsyncSession, entries: Sequence[MappingEntry], now: datetime) -> None:
    """Store created mappings unless one for the same vendor id exists (the caller commits)."""
    unique = {e.key: e for e in entries}
    if not unique:
        return
    rows = [e.row(now) for _, e in sorted(unique.items())]
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(mappings).on_conflict_do_nothing(
        index_elements=["provider", "merchant_id", "kind", "vendor_id"]
    )
    await session.execute(statement, rows)
    await bump_versions(session, {(e.provider, e.merchant_id) for e in unique.values()})
