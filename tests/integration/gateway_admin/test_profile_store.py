"""Stored validation profiles: lookup order and the pipeline hook `screen` on a real database."""

from __future__ import annotations

import logging

import pytest

from posgate.contracts import inventory
from posgate.gateway.adapters.base import CanonicalCommand
from posgate.gateway.profiles import (
    Decision,
    ProfileRejection,
    ValidationProfile,
    load_profile,
    save_profile,
    screen,
)
from tests.unit.gateway.adapters.standard.cases import NOW

ROUNDED = "quantity 2.5 rounded down to 2"


def command(*warnings: str) -> CanonicalCommand:
    message = inventory.pb.ApplyMovementsRequest()
    return CanonicalCommand("svc/Method", message, "key-1", "tenant-acme", "s1", warnings=warnings)


async def save(sessions, tenant: str, **rules: Decision) -> None:
    async with sessions() as session:
        await save_profile(session, ValidationProfile("toast", tenant, rules), NOW)
        await session.commit()


async def test_tenant_profile_then_provider_wide_then_default(sessions) -> None:
    await save(sessions, "*", fractional_quantity_rounded=Decision.OFF)
    await save(sessions, "tenant-acme", fractional_quantity_rounded=Decision.REJECT)
    async with sessions() as session:
        acme = await load_profile(session, "toast", "tenant-acme")
        other = await load_profile(session, "toast", "tenant-other")
        unknown_tenant = await load_profile(session, "toast", None)
        square = await load_profile(session, "square", "tenant-acme")
    assert acme.decision("fractional_quantity_rounded") is Decision.REJECT
    assert other.decision("fractional_quantity_rounded") is Decision.OFF
    assert unknown_tenant.tenant == "*"
    assert square.decision("fractional_quantity_rounded") is Decision.WARN


async def test_screen_rejects_warns_and_ignores(sessions, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="posgate.gateway.profiles")
    async with sessions() as session:
        warned = await screen(session, "toast", "tenant-acme", [command(ROUNDED)])
    assert warned[0].warnings == (ROUNDED,)
    assert "rule=fractional_quantity_rounded" in caplog.text

    await save(sessions, "tenant-acme", fractional_quantity_rounded=Decision.REJECT)
    async with sessions() as session:
        with pytest.raises(ProfileRejection) as rejected:
            await screen(session, "toast", "tenant-acme", [command(ROUNDED)])
    assert (rejected.value.failure_class, rejected.value.reason) == (
        "validation",
        "fractional_quantity_rounded",
    )

    await save(sessions, "tenant-acme", fractional_quantity_rounded=Decision.OFF)
    async with sessions() as session:
        ignored = await screen(session, "toast", "tenant-acme", [command(ROUNDED)])
    assert ignored[0].warnings == ()


async def test_unknown_rules_are_refused(sessions) -> None:
    with pytest.raises(ValueError, match="unknown rules"):
        await save(sessions, "*", made_up=Decision.WARN)
