"""Replaying a command's failure fetches a Square order or catalog again only when the fetch had failed."""

from __future__ import annotations

import pytest

from posgate.gateway.catalog_fetch import CatalogItems
from posgate.gateway.command_fetch import requeue_state
from posgate.gateway.order_fetch import EXHAUSTED
from posgate.gateway.tables import CommandState, FailureClass


@pytest.mark.parametrize(
    ("failure_class", "reason", "provider", "state"),
    [
        (FailureClass.PROCESSING, EXHAUSTED, "square", CommandState.AWAITING_FETCH),
        (FailureClass.PROCESSING, "square_token_missing", "square", CommandState.AWAITING_FETCH),
        (FailureClass.PROCESSING, CatalogItems.exhausted, "square", CommandState.AWAITING_FETCH),
        (FailureClass.PROCESSING, "square_catalog_fetch_refused", "square", CommandState.AWAITING_FETCH),
        (FailureClass.PROCESSING, "square_catalog_fetch_invalid", "square", CommandState.AWAITING_FETCH),
        (FailureClass.MAPPING, "unmapped_sku", "square", CommandState.AWAITING_FETCH),
        # A dispatch refusal of a Square inventory command is sent again, not fetched.
        (FailureClass.PROCESSING, "dispatch_exhausted", "square", CommandState.PENDING),
        # Another vendor's command never goes to the Square fetcher.
        (FailureClass.MAPPING, "unmapped_sku", "shopify", CommandState.PENDING),
        (FailureClass.PROCESSING, EXHAUSTED, "toast", CommandState.PENDING),
    ],
)
def test_requeue_state(failure_class: str, reason: str, provider: str, state: str) -> None:
    assert requeue_state(failure_class, reason, provider) == state
