"""Mapping storage and snapshots; failures listed by impact."""

from __future__ import annotations

from datetime import timedelta

import pytest

from posgate.gateway import mappings
from posgate.gateway.failure_rows import record_failure
from posgate.gateway.failures import FailureFilter, list_failures
from posgate.gateway.mappings import MappingEntry
from posgate.gateway.tables import MappingKind
from tests.integration.gateway.conftest import load_mappings
from tests.unit.gateway.adapters.standard.cases import NOW


async def test_bulk_load_upserts_lists_snapshots_and_deletes(sessions) -> None:
    skus = [MappingEntry("square", "m1", MappingKind.SKU, f"item-{i}", f"SKU-{i}") for i in range(1200)]
    await load_mappings(sessions, [MappingEntry("square", "m1", MappingKind.TENANT, "ignored", "t1"), *skus])
    await load_mappings(sessions, [MappingEntry("square", "m1", MappingKind.SKU, "item-7", "SKU-NEW")])

    async with sessions() as session:
        listed = await mappings.list_mappings(session, "square", "m1", MappingKind.SKU)
        lookup = await mappings.snapshot(session, "square", "m1")
        other = await mappings.snapshot(session, "square", "m2")
    assert len(listed) == 1200
    assert lookup.tenant("square", "m1") == "t1"
    assert lookup.sku("square", "m1", "item-7") == "SKU-NEW"
    assert lookup.sku("square", "m1", "item-8") == "SKU-8"
    assert lookup.sku("toast", "m1", "item-8") is None
    assert other.tenant("square", "m2") is None

    async with sessions() as session:
        removed = await mappings.delete_mappings(session, "square", "m1", MappingKind.SKU, ["item-7", "nope"])
        await session.commit()
        lookup = await mappings.snapshot(session, "square", "m1")
    assert removed == 1
    assert lookup.sku("square", "m1", "item-7") is None


async def test_incomplete_mappings_are_refused(sessions) -> None:
    with pytest.raises(ValueError, match="incomplete"):
        await load_mappings(sessions, [MappingEntry("square", "m1", MappingKind.SKU, "", "SKU-1")])
    with pytest.raises(ValueError, match="kind"):
        await load_mappings(sessions, [MappingEntry("square", "m1", "variant", "v", "SKU-1")])


async def _failure(sessions, topic: str, store: str, reason: str = "unmapped_sku", at=NOW, **extra) -> int:
    async with sessions() as session:
        failure_id = await record_failure(
            session,
            failure_class=extra.pop("failure_class", "mapping"),
            reason=reason,
            detail="",
            provider=extra.pop("provider", "square"),
            topic=topic,
            raw_payload_id=None,
            now=at,
            tenant_id="t1",
            store_id=store,
        )
        await session.commit()
    return failure_id


async def test_failures_are_listed_orders_first_then_by_affected_stores(sessions) -> None:
    menu = await _failure(sessions, "menu", "s1")
    stock_wide = [await _failure(sessions, "inventory", s, "unmapped_store") for s in ("s1", "s2", "s3")]
    stock_narrow = await _failure(sessions, "inventory", "s1", "unmapped_sku", at=NOW + timedelta(minutes=1))
    order = await _failure(sessions, "orders", "s9", "unmapped_store", provider="toast")

    async with sessions() as session:
        ranked = await list_failures(session, FailureFilter())
        toast = await list_failures(session, FailureFilter(provider="toast"))
        recent = await list_failures(session, FailureFilter(since=NOW + timedelta(seconds=30)))
        s2 = await list_failures(session, FailureFilter(store_id="s2"))
        auth = await list_failures(session, FailureFilter(failure_class="auth"))

    assert ranked[0].id == order
    assert {view.id for view in ranked[1:4]} == set(stock_wide)
    assert ranked[1].affected_stores == 3
    assert [view.id for view in ranked[4:]] == [stock_narrow, menu]
    assert [view.id for view in toast] == [order]
    assert [view.id for view in recent] == [stock_narrow]
    assert [view.id for view in s2] == [stock_wide[1]]
    assert auth == []
