"""Who may call: the caller policy built from settings, without a server."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from posgate.errors import Unauthenticated
from posgate.runtime.auth import CallerPolicy, ServerConfigurationError
from posgate.runtime.caller import Caller
from posgate.settings import Settings

SSL_PEER_WITH_CERT = {"transport_security_type": [b"ssl"], "x509_pem_cert": [b"-----BEGIN CERTIFICATE-----"]}


def _settings(**values) -> Settings:
    values.setdefault("dev_mode", False)
    values.setdefault("auth_tokens", [])
    values.setdefault("tls_client_ca_file", None)
    return Settings(**values)


def _policy(**values) -> CallerPolicy:
    policy = CallerPolicy.from_settings(_settings(**values))
    assert policy is not None
    return policy


def _reason(policy: CallerPolicy, metadata, auth_context=None) -> str | None:
    try:
        policy.authenticate(metadata, auth_context or {})
    except Unauthenticated as error:
        return error.reason
    return None


def test_dev_mode_checks_no_callers():
    assert CallerPolicy.from_settings(_settings(dev_mode=True)) is None


def test_outside_dev_mode_some_credential_is_required():
    with pytest.raises(ServerConfigurationError, match="POSGATE_AUTH_TOKENS"):
        CallerPolicy.from_settings(_settings())


def test_blank_tokens_do_not_count():
    with pytest.raises(ServerConfigurationError):
        CallerPolicy.from_settings(_settings(auth_tokens=[SecretStr("")]))


def test_tokens_from_the_environment_are_split_for_rotation(monkeypatch):
    monkeypatch.setenv("POSGATE_AUTH_TOKENS", "old-token, new-token")
    policy = CallerPolicy.from_settings(Settings(dev_mode=False))
    assert policy is not None
    assert [token.secret for token in policy.tokens] == [b"old-token", b"new-token"]
    assert [token.caller for token in policy.tokens] == [Caller("token#1", None), Caller("token#2", None)]


@pytest.mark.parametrize(
    ("metadata", "reason"),
    [
        ((), "CREDENTIALS_MISSING"),
        (None, "CREDENTIALS_MISSING"),
        ((("authorization", "Bearer "),), "CREDENTIALS_MALFORMED"),
        ((("authorization", "Token t1"),), "CREDENTIALS_MALFORMED"),
        ((("authorization", "Bearer t3"),), "TOKEN_INVALID"),
        ((("authorization", "Bearer t1x"),), "TOKEN_INVALID"),
        ((("authorization", "Bearer t1"),), None),
        ((("authorization", "bearer t2"),), None),
        ((("x-other", "v"), ("authorization", "Bearer  t2 ")), None),
    ],
)
def test_bearer_tokens(metadata, reason):
    assert _reason(_policy(auth_tokens=[SecretStr("t1"), SecretStr("t2")]), metadata) == reason


def test_the_rejection_never_contains_the_presented_token():
    with pytest.raises(Unauthenticated) as raised:
        _policy(auth_tokens=[SecretStr("t1")]).authenticate((("authorization", "Bearer s3cr3t"),), {})
    assert "s3cr3t" not in str(raised.value)
    assert "s3cr3t" not in repr(raised.value)
    assert all("s3cr3t" not in value for value in raised.value.metadata.values())


def test_a_verified_client_certificate_counts_only_with_mtls_configured():
    with_mtls = _policy(tls_client_ca_file="/etc/posgate/ca.pem")
    without_mtls = _policy(auth_tokens=[SecretStr("t1")])
    assert _reason(with_mtls, (), SSL_PEER_WITH_CERT) is None
    assert _reason(with_mtls, (), {"transport_security_type": [b"ssl"]}) == "CREDENTIALS_MISSING"
    assert _reason(without_mtls, (), SSL_PEER_WITH_CERT) == "CREDENTIALS_MISSING"
