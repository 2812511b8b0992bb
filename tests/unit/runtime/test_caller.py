"""The current caller and the tenants it may act for, without any transport."""

from __future__ import annotations

import asyncio

import pytest

from posgate.errors import PermissionDenied
from posgate.runtime.caller import (
    ANONYMOUS_DEV_CALLER,
    TENANT_FORBIDDEN,
    Caller,
    caller_scope,
    current_caller,
    require_tenant,
)

KIOSK = Caller("token#2", frozenset({"t1", "t3"}))
INTERNAL = Caller("token#1", None)


def test_a_scoped_caller_may_act_only_for_its_tenants():
    assert KIOSK.may_act_for("t1")
    assert KIOSK.may_act_for("t3")
    assert not KIOSK.may_act_for("t2")
    assert not KIOSK.may_act_for("")
    assert not KIOSK.may_act_for("T1")


def test_an_unscoped_caller_may_act_for_every_tenant():
    assert INTERNAL.may_act_for("t1")
    assert INTERNAL.may_act_for("anything")


def test_an_empty_scope_allows_no_tenant():
    assert not Caller("nobody", frozenset()).may_act_for("t1")


def test_outside_any_scope_the_caller_is_the_all_tenants_dev_caller():
    assert current_caller() == ANONYMOUS_DEV_CALLER == Caller("anonymous-dev", None)
    require_tenant("t2")


def test_a_scope_sets_the_caller_and_restores_the_previous_one():
    with caller_scope(INTERNAL):
        with caller_scope(KIOSK) as inner:
            assert inner is KIOSK
            assert current_caller() is KIOSK
        assert current_caller() is INTERNAL
    assert current_caller() is ANONYMOUS_DEV_CALLER


def test_a_scope_is_restored_when_the_block_raises():
    with pytest.raises(RuntimeError), caller_scope(KIOSK):
        raise RuntimeError
    assert current_caller() is ANONYMOUS_DEV_CALLER


def test_require_tenant_refuses_other_tenants_with_a_stable_reason():
    with caller_scope(KIOSK):
        require_tenant("t1")
        with pytest.raises(PermissionDenied) as raised:
            require_tenant("t2")
    assert raised.value.reason == TENANT_FORBIDDEN == "TENANT_FORBIDDEN"
    assert "t2" in raised.value.message
    assert dict(raised.value.metadata) == {"tenant_id": "t2"}


async def test_concurrent_tasks_keep_their_own_caller():
    async def act_as(caller: Caller) -> str:
        with caller_scope(caller):
            await asyncio.sleep(0.01)
            return current_caller().name

    names = await asyncio.gather(act_as(KIOSK), act_as(INTERNAL), act_as(KIOSK))
    assert names == ["token#2", "token#1", "token#2"]
    assert current_caller() is ANONYMOUS_DEV_CALLER


async def test_the_caller_follows_an_async_generator_across_yields():
    async def stream():
        for _ in range(3):
            await asyncio.sleep(0)
            yield current_caller().name

    async def consume() -> list[str]:
        with caller_scope(KIOSK):
            return [name async for name in stream()]

    assert await consume() == ["token#2"] * 3
