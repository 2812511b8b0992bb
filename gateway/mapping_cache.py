"""Merchants' mapping snapshots kept in memory while their stored version is unchanged.

Loading every mapping of a merchant for each delivery costs a query returning up to thousands
of rows. Each change to a merchant's mappings bumps its row in `gw_mapping_versions` in the
same transaction (`posgate.gateway.mappings.bump_versions`), so one small read per batch of
deliveries tells which cached snapshots are still current, in any number of processes.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from posgate.gateway.mapping_policies import EVERY_MERCHANT, policy_of
from posgate.gateway.mappings import MappingSnapshot, snapshot
from posgate.gateway.tables import mapping_versions

Merchant = tuple[str, str]
"""(provider, vendor merchant id)."""
Version = tuple[int, int]
"""The versions of an account's mappings and of its channel's policy."""


class MappingCache:
    """Snapshots of the most recently used merchants, each checked against its version."""

    def __init__(self, capacity: int = 1024) -> None:
        """Keep at most `capacity` merchants (least recently used leave first)."""
        self._capacity = capacity
        self._entries: OrderedDict[Merchant, tuple[Version, MappingSnapshot]] = OrderedDict()

    async def snapshots(
        self,
        session: AsyncSession,
        merchants: Iterable[Merchant],
        versions: Mapping[Merchant, int] | None = None,
    ) -> dict[Merchant, MappingSnapshot]:
        """A current snapshot of each merchant, read in `session`'s transaction where stale.

        `versions`: the stored versions of `version_rows(merchants)` (or more), if the caller
        read them already (`posgate.gateway.ingest_sql.look_up`); read here otherwise.
        """
        wanted = sorted(set(merchants))
        if not wanted:
            return {}
        if versions is None:
            versions = await _versions(session, version_rows(wanted))
        found: dict[Merchant, MappingSnapshot] = {}
        for merchant in wanted:
            # A merchant without a version row never had a mapping or policy: version 0.
            version = (versions.get(merchant, 0), versions.get((merchant[0], EVERY_MERCHANT), 0))
            cached = self._entries.get(merchant)
            if cached is not None and cached[0] == version:
                self._entries.move_to_end(merchant)
                found[merchant] = cached[1]
                continue
            # Read after the version: the snapshot is at least as new as the version it is kept
            # under, so a change committed in between costs one more load, never a stale hit.
            found[merchant] = await snapshot(session, *merchant, await policy_of(session, *merchant))
            self._keep(merchant, version, found[merchant])
        return found

    def cached(
        self, merchants: Iterable[Merchant]
    ) -> tuple[dict[Merchant, MappingSnapshot], dict[Merchant, int]] | None:
        """The kept snapshots of `merchants` and the version rows they are kept under, or None.

        None when one of `merchants` is not kept.

        No database: a caller that uses them must check the versions where it writes
        (`posgate.gateway.ingest_new`), since another process may have changed a mapping since.
        """
        found: dict[Merchant, MappingSnapshot] = {}
        versions: dict[Merchant, int] = {}
        for merchant in set(merchants):
            cached = self._entries.get(merchant)
            if cached is None:
                return None
            (own, channel), found[merchant] = cached
            channel_row = (merchant[0], EVERY_MERCHANT)
            if versions.setdefault(channel_row, channel) != channel:
                return None  # two merchants kept under different channel versions: one is stale
            versions[merchant] = own
        return found, versions

    def _keep(self, merchant: Merchant, version: Version, loaded: MappingSnapshot) -> None:
        self._entries[merchant] = (version, loaded)
        self._entries.move_to_end(merchant)
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)


def version_rows(merchants: Iterable[Merchant]) -> list[Merchant]:
    """The `gw_mapping_versions` rows that tell whether `merchants`' snapshots are current."""
    wanted = set(merchants)
    return sorted(wanted | {(provider, EVERY_MERCHANT) for provider, _ in wanted})


async def _versions(session: AsyncSession, merchants: list[Merchant]) -> dict[Merchant, int]:
    """The stored versions of `merchants`.

    The ingest path on PostgreSQL reads them with its claims instead (`ingest_sql.look_up`).
    """
    query = select(
        mapping_versions.c.provider, mapping_versions.c.merchant_id, mapping_versions.c.version
    ).where(tuple_(mapping_versions.c.provider, mapping_versions.c.merchant_id).in_(merchants))
    return {(row[0], row[1]): int(row[2]) for row in await session.execute(query)}
