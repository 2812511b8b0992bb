"""Events are validated where they enter the bus; failures are described without secrets."""

from __future__ import annotations

import dataclasses
import random
from typing import Any

import pytest

from posgate.bus.ports import OutgoingEvent
from posgate.bus.retry import Backoff, describe_error


def test_outgoing_event_rejects_what_the_outbox_or_amqp_could_not_carry() -> None:
    ok = OutgoingEvent("e1", "posgate.events.v1.StockChanged", "inventory.stock_changed", b"")
    assert ok.partition_key is None
    assert dict(ok.headers) == {}
    bad_values: list[dict[str, Any]] = [
        {"event_id": ""},
        {"event_id": "x" * 65},
        {"event_type": ""},
        {"routing_key": ""},
        {"routing_key": "inventory.*"},
        {"routing_key": "#"},
    ]
    for bad in bad_values:
        with pytest.raises(ValueError):
            dataclasses.replace(ok, **bad)


def test_describe_error_masks_url_passwords() -> None:
    error = ConnectionError("cannot reach amqp://posgate:hunter2@rabbit:5672/prod")
    assert describe_error(error) == "ConnectionError: cannot reach amqp://posgate:******@rabbit:5672/prod"
    assert describe_error(ValueError("plain")) == "ValueError: plain"


def test_backoff_grows_exponentially_with_jitter_and_is_capped() -> None:
    backoff = Backoff(base_s=0.1, cap_s=2.0, rng=random.Random(7))
    for failures, ceiling in [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (5, 1.6), (6, 2.0), (50, 2.0)]:
        delays = {backoff.delay(failures) for _ in range(20)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 1, "jittered"
