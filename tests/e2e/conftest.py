"""The gateway + inventory deployment the end-to-end gateway tests start processes in."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.test_gateway_webhooks import Stack


@pytest.fixture
async def stack(postgres_url: str, amqp_url: str, unique_name: str, tmp_path: Path):
    """A migrated, mapped database and the ports of one deployment; its processes stopped after."""
    deployment = Stack(postgres_url, amqp_url, unique_name, tmp_path)
    await deployment.prepare()
    try:
        yield deployment
    finally:
        deployment.stop_all()
