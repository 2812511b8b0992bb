"""Square catalog fetches that fail: no token, rate limits, exhausted retries, refusals."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from posgate.gateway.adapters.square.catalog_api import SquareCatalogClient
from posgate.gateway.failures import replay
from posgate.gateway.tables import CommandState
from tests.integration.gateway.catalog_fetching import (
    TENANT,
    TOKEN,
    catalog_client,
    catalog_updated,
    fetcher,
    variant_skus,
)
from tests.integration.gateway.square_fake import (
    Clock,
    command_row,
    failure_rows,
    fake_square,
    retried_after_backoff,
)

square = pytest.fixture(fake_square, name="square")
client = pytest.fixture(catalog_client, name="client")


async def test_a_merchant_without_token_is_dead_and_replayable(sessions, square) -> None:
    fake, base = square
    command_id = await catalog_updated(sessions)
    without = SquareCatalogClient(base, {})
    try:
        await fetcher(sessions, without).fetch_due()
    finally:
        await without.close()

    assert (await command_row(sessions, command_id)).state == CommandState.DEAD
    [failure] = await failure_rows(sessions)
    assert (failure.failure_class, failure.reason) == ("processing", "square_token_missing")
    assert (failure.provider, failure.tenant_id) == ("square", TENANT)
    assert fake.seen == []

    [result] = await replay(sessions, [failure.id], datetime.now(UTC))
    assert result.outcome == "requeued"
    assert (await command_row(sessions, command_id)).state == CommandState.AWAITING_FETCH


async def test_rate_limited_is_retried_after_a_backoff(sessions, square, client) -> None:
    fake, _ = square
    fake.answers.append((429, {"errors": [{"category": "RATE_LIMIT_ERROR", "code": "RATE_LIMITED"}]}))
    clock = Clock()
    catalog_fetcher = fetcher(sessions, client, clock=clock)
    command_id = await catalog_updated(sessions)

    row = await retried_after_backoff(sessions, catalog_fetcher, clock, command_id, "HTTP 429 RATE_LIMITED")
    assert len(fake.searches) == 3  # the refused page, then both pages
    assert variant_skus(row) == [["SKU-LATTE", "SKU-LATTE-S"], ["SKU-BEANS-250"]]


async def test_retries_end_in_the_dead_letter_store(sessions, square, client) -> None:
    fake, _ = square
    fake.answers.append((503, {}))

    command_id = await catalog_updated(sessions)
    await fetcher(sessions, client, max_attempts=1).fetch_due()

    assert (await command_row(sessions, command_id)).state == CommandState.DEAD
    [failure] = await failure_rows(sessions)
    assert (failure.failure_class, failure.reason) == ("processing", "square_catalog_fetch_exhausted")


async def test_a_refusal_is_dead_at_once_and_names_no_token(sessions, square, client, caplog) -> None:
    fake, _ = square
    fake.answers.append((403, {"errors": [{"code": "INSUFFICIENT_SCOPES", "detail": TOKEN}]}))
    caplog.set_level(logging.DEBUG)
    command_id = await catalog_updated(sessions)

    await fetcher(sessions, client).fetch_due()

    row = await command_row(sessions, command_id)
    [failure] = await failure_rows(sessions)
    assert (row.state, failure.reason) == (CommandState.DEAD, "square_catalog_fetch_refused")
    assert "HTTP 403 INSUFFICIENT_SCOPES" in failure.detail
    assert caplog.records
    for text in (caplog.text, failure.detail, row.last_error):
        assert TOKEN not in text
