"""Unmapped-SKU policies: `review` holds the delivery, `create` maps the item to itself and accepts it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from posgate.gateway import mapping_policies
from posgate.gateway.ingestor import Ingestor
from posgate.gateway.mapping_policies import PolicyEntry
from posgate.gateway.mappings import MappingEntry, list_mappings
from posgate.gateway.tables import MappingKind, commands
from tests.integration.gateway.conftest import MAPPED, count, load_mappings
from tests.integration.gateway.test_ingestor import movement
from tests.unit.gateway.adapters.standard.cases import MERCHANT, NOW


async def set_policy(sessions, merchant_id: str, policy: str) -> None:
    async with sessions() as session:
        await mapping_policies.set_policy(session, PolicyEntry("standard", merchant_id, policy), NOW)
        await session.commit()


async def skus(sessions) -> dict[str, str]:
    async with sessions() as session:
        entries = await list_mappings(session, "standard", MERCHANT, MappingKind.SKU)
    return {entry.vendor_id: entry.canonical_id for entry in entries}


async def test_a_channel_create_policy_maps_the_item_to_itself_once(sessions) -> None:
    await load_mappings(sessions, MAPPED)
    ingestor = Ingestor(sessions)
    held = await ingestor.submit(movement("m-1", item="SOCKS-9"))
    # Switched while this ingestor holds the merchant's mappings in its cache.
    await set_policy(sessions, mapping_policies.EVERY_MERCHANT, "create")

    first = await ingestor.submit(movement("m-2", item="SOCKS-9"))
    second = await ingestor.submit(movement("m-3", item="SOCKS-9"))

    assert (held.outcome, held.reason) == ("failed", "unmapped_sku")
    assert first.outcome == second.outcome == "accepted"
    assert (await skus(sessions))["SOCKS-9"] == "SOCKS-9"
    async with sessions() as session:
        bodies = [bytes(row.body) for row in await session.execute(select(commands.c.body))]
    assert len(bodies) == 2
    assert all(b"SOCKS-9" in body for body in bodies)


async def test_an_account_policy_wins_over_its_channel(sessions) -> None:
    await load_mappings(sessions, MAPPED)
    await set_policy(sessions, mapping_policies.EVERY_MERCHANT, "create")
    await set_policy(sessions, MERCHANT, "review")

    result = await Ingestor(sessions).submit(movement("m-1", item="SOCKS-9"))

    assert (result.outcome, result.failure_class, result.reason) == ("failed", "mapping", "unmapped_sku")
    assert "SOCKS-9" not in await skus(sessions)
    assert await count(sessions, commands) == 0


async def test_created_mappings_never_overwrite_an_operators(sessions) -> None:
    await load_mappings(sessions, MAPPED)
    await set_policy(sessions, MERCHANT, "create")
    async with sessions() as session:
        # Stored while the delivery's batch had already decided to create one.
        operator = MappingEntry("standard", MERCHANT, MappingKind.SKU, "SOCKS-9", "ACME-SOCKS")
        await mapping_policies.create_missing(session, [operator], NOW)
        created = MappingEntry("standard", MERCHANT, MappingKind.SKU, "SOCKS-9", "SOCKS-9")
        await mapping_policies.create_missing(session, [created], NOW + timedelta(seconds=1))
        await session.commit()

    assert (await skus(sessions))["SOCKS-9"] == "ACME-SOCKS"


async def test_unknown_policies_are_refused(sessions) -> None:
    async with sessions() as session:
        with pytest.raises(ValueError, match="unmapped_sku must be one of"):
            await mapping_policies.set_policy(session, PolicyEntry("standard", "", "guess"), NOW)
        assert await mapping_policies.list_policies(session) == []
