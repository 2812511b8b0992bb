"""TLS settings must be complete before a server starts."""

from __future__ import annotations

import pytest

from posgate.runtime.auth import ServerConfigurationError
from posgate.runtime.tls import server_credentials
from posgate.settings import Settings


def _settings(**values) -> Settings:
    base = {"tls_cert_file": None, "tls_key_file": None, "tls_client_ca_file": None}
    return Settings(**(base | values))


def test_no_tls_settings_mean_plaintext():
    assert server_credentials(_settings()) is None


@pytest.mark.parametrize(
    "values",
    [
        {"tls_cert_file": "server.pem"},
        {"tls_key_file": "server.key"},
        {"tls_client_ca_file": "ca.pem"},
    ],
)
def test_partial_tls_settings_are_refused(values):
    with pytest.raises(ServerConfigurationError):
        server_credentials(_settings(**values))


def test_unreadable_files_are_named(tmp_path):
    with pytest.raises(ServerConfigurationError, match=r"TLS key file .*server\.key"):
        server_credentials(
            _settings(tls_cert_file=str(tmp_path / "server.pem"), tls_key_file=str(tmp_path / "server.key"))
        )
