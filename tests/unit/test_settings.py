"""Settings: parsed from POSGATE_* variables, secrets hidden, every one documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from posgate.settings import EventTransport, Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_reads_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSGATE_EVENT_TRANSPORT", "rabbitmq")
    monkeypatch.setenv("POSGATE_INVENTORY_PORT", "6000")
    monkeypatch.setenv("POSGATE_AUTH_TOKENS", "first-token, second-token,")
    settings = Settings()
    assert settings.event_transport is EventTransport.RABBITMQ
    assert settings.inventory_port == 6000
    assert [token.get_secret_value() for token in settings.auth_tokens] == ["first-token", "second-token"]


def test_secrets_stay_out_of_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSGATE_AMQP_URL", "amqp://svc:hunter2@broker:5672/")
    monkeypatch.setenv("POSGATE_AUTH_TOKENS", "s3cret-token")
    shown = repr(Settings()) + str(Settings().model_dump())
    assert "hunter2" not in shown
    assert "s3cret-token" not in shown


def test_rejects_out_of_range_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSGATE_CONSUMER_PREFETCH", "0")
    with pytest.raises(ValueError, match="consumer_prefetch"):
        Settings()


def test_every_setting_is_in_the_readme_reference() -> None:
    text = README.read_text()
    missing = [name for name in Settings.model_fields if f"`POSGATE_{name.upper()}`" not in text]
    assert missing == []


DEPLOY = README.parent / "deploy"


def test_every_variable_the_deploy_files_set_is_a_setting() -> None:
    # Settings ignore unknown POSGATE_* variables, so a misspelt one in a manifest would be lost.
    known = {f"POSGATE_{name.upper()}" for name in Settings.model_fields}
    used = {
        name
        for path in sorted(DEPLOY.rglob("*"))
        if path.is_file()
        for name in re.findall(r"\bPOSGATE_[A-Z0-9_]+\b", path.read_text())
    }
    assert "POSGATE_INVENTORY_TARGET" in used
    assert sorted(used - known) == []


def test_the_gateway_manifest_sends_commands_to_the_inventory_edge() -> None:
    inventory = (DEPLOY / "k8s" / "inventory.yaml").read_text()
    gateway = (DEPLOY / "k8s" / "gateway.yaml").read_text()
    edge_port = re.search(r'POSGATE_INVENTORY_STREAM_PORT, value: "(\d+)"', inventory)
    target = re.search(r'POSGATE_INVENTORY_TARGET, value: "posgate-inventory:(\d+)"', gateway)
    assert edge_port is not None
    assert target is not None
    assert target.group(1) == edge_port.group(1)
