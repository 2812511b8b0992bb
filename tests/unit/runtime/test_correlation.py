"""Correlation ids: accepted from callers only when safe, scoped per task."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from posgate.runtime.correlation import (
    accept_correlation_id,
    correlation_scope,
    current_correlation_id,
    new_correlation_id,
)


@pytest.mark.parametrize("candidate", ["abc-123", "7f1c9a3e-0d2b-4c8e-9a61-3b5f2e8d1c44", "order:42.retry_1"])
def test_plain_ids_are_kept(candidate):
    assert accept_correlation_id(candidate) == candidate


@pytest.mark.parametrize("candidate", [None, "", "line\nbreak", "with space", "x" * 129, "ünïcode"])
def test_unsafe_or_missing_ids_are_replaced(candidate):
    assert uuid.UUID(accept_correlation_id(candidate)).version == 4


def test_generated_ids_are_canonical_uuid4s():
    ids = [new_correlation_id() for _ in range(2000)]
    for generated in ids:
        parsed = uuid.UUID(generated)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, generated)
    assert len(set(ids)) == len(ids)


def test_the_scope_sets_and_restores():
    assert current_correlation_id() is None
    with correlation_scope("outer"):
        with correlation_scope("inner"):
            assert current_correlation_id() == "inner"
        assert current_correlation_id() == "outer"
    assert current_correlation_id() is None


async def test_concurrent_tasks_see_their_own_id():
    async def work(correlation_id: str) -> str | None:
        with correlation_scope(correlation_id):
            await asyncio.sleep(0)
            return current_correlation_id()

    assert await asyncio.gather(work("a"), work("b")) == ["a", "b"]
