"""`posgate failures` as an operator runs it: a subprocess on a migrated SQLite file."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from posgate.db.engine import create_engine, session_factory
from posgate.gateway.pipeline import ingest
from posgate.gateway.tables import commands
from tests.integration.gateway.conftest import MAPPED, count, delivery, load_mappings
from tests.integration.gateway_admin.conftest import unmapped_sku_failure
from tests.unit.gateway.adapters.standard.cases import NOW, SECRET

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
async def sessions(sqlite_url: str):
    engine = create_engine(sqlite_url)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


async def posgate(sqlite_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "POSGATE_DATABASE_URL": sqlite_url, "POSGATE_LOG_LEVEL": "WARNING"}
    command = [sys.executable, "-m", "posgate.cli", "failures", *args]
    return await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, env=env, cwd=REPO, timeout=60, check=False
    )


async def test_list_show_and_usage_errors(sessions, sqlite_url: str) -> None:
    failed = await unmapped_sku_failure(sessions)

    listed = await posgate(sqlite_url, "list", "--class", "mapping")
    shown = await posgate(sqlite_url, "show", str(failed.failure_id))
    no_selection = await posgate(sqlite_url, "replay")
    ids_and_filter = await posgate(sqlite_url, "replay", "1", "--provider", "standard")
    not_an_id = await posgate(sqlite_url, "replay", "abc")
    missing = await posgate(sqlite_url, "show", "99999")

    assert listed.returncode == 0, listed.stderr
    header, row = listed.stdout.splitlines()
    assert header.split()[:3] == ["ID", "CLASS", "REASON"]
    assert row.split()[:4] == [str(failed.failure_id), "mapping", "unmapped_sku", "standard"]
    assert shown.returncode == 0
    assert "webhook-signature:" in shown.stdout
    assert '"TSHIRT-M"' in shown.stdout
    assert no_selection.returncode == ids_and_filter.returncode == not_an_id.returncode == 2
    assert missing.returncode == 1


async def test_bulk_replay_shows_progress_and_exit_codes(sessions, sqlite_url: str) -> None:
    await unmapped_sku_failure(sessions)
    await unmapped_sku_failure(sessions, "inventory_counts.json")

    still_unmapped = await posgate(sqlite_url, "replay", "--all", "--class", "mapping")
    assert still_unmapped.returncode == 1
    assert "replayed 1/2 [==========          ] 50%" in still_unmapped.stderr
    assert "replayed 2/2 [====================] 100%" in still_unmapped.stderr
    assert "0 replayed, 2 failed" in still_unmapped.stdout

    await load_mappings(sessions, MAPPED)
    fixed = await posgate(sqlite_url, "replay", "--all", "--provider", "standard")
    assert fixed.returncode == 0, fixed.stderr
    assert "2 replayed, 0 failed" in fixed.stdout
    assert fixed.stdout.count("accepted") == 2
    written = await count(sessions, commands)
    assert written >= 2

    nothing_left = await posgate(sqlite_url, "replay", "--all")
    not_found = await posgate(sqlite_url, "replay", "99999")
    assert (nothing_left.returncode, nothing_left.stderr) == (0, "")
    assert not_found.returncode == 1
    assert "not_found" in not_found.stdout
    assert await count(sessions, commands) == written


async def test_single_replay_prints_no_progress_bar(sessions, sqlite_url: str) -> None:
    await load_mappings(sessions, MAPPED)
    first = await ingest(sessions, delivery("inventory_movements.json"), (SECRET,), NOW, tenant="tenant-acme")
    repeat = await ingest(
        sessions, delivery("inventory_movements.json"), (SECRET,), NOW, tenant="tenant-acme"
    )
    assert (first.outcome, repeat.outcome) == ("accepted", "duplicate")
    # A duplicate is recorded resolved: replaying it changes nothing and is no failure.
    replayed = await posgate(sqlite_url, "replay", str(repeat.failure_id))
    assert replayed.returncode == 0, replayed.stderr
    assert "already_resolved" in replayed.stdout
    assert "replayed" not in replayed.stderr
