"""`POSGATE_AUTH_TOKENS` entries: `<secret>` or `<secret>@<tenant>|<tenant>...`, checked at start-up."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from posgate.errors import Unauthenticated
from posgate.runtime.auth import CallerPolicy, ServerConfigurationError, parse_auth_tokens
from posgate.runtime.caller import Caller
from posgate.settings import Settings

SECRET = "s3cr3t-9d2f"


def _policy(*entries: str) -> CallerPolicy:
    settings = Settings(
        dev_mode=False, auth_tokens=[SecretStr(entry) for entry in entries], tls_client_ca_file=None
    )
    policy = CallerPolicy.from_settings(settings)
    assert policy is not None
    return policy


def _caller(policy: CallerPolicy, token: str) -> Caller:
    return policy.authenticate((("authorization", f"Bearer {token}"),), {})


def test_a_bare_secret_acts_for_every_tenant():
    (token,) = parse_auth_tokens(["internal-1"])
    assert token.secret == b"internal-1"
    assert token.caller == Caller("token#1", None)


def test_a_scoped_secret_acts_only_for_its_tenants():
    (token,) = parse_auth_tokens(["kiosk-1@t1|t2"])
    assert token.secret == b"kiosk-1"
    assert token.caller == Caller("token#1", frozenset({"t1", "t2"}))


def test_the_scope_is_what_follows_the_last_at_sign():
    (token,) = parse_auth_tokens(["user@host@t1"])
    assert token.secret == b"user@host"
    assert token.caller.tenants == frozenset({"t1"})


def test_spaces_around_the_parts_are_ignored():
    (token,) = parse_auth_tokens([" kiosk-1 @ t1 | t2 "])
    assert token.secret == b"kiosk-1"
    assert token.caller.tenants == frozenset({"t1", "t2"})


def test_callers_are_named_by_position_among_non_blank_entries():
    tokens = parse_auth_tokens(["a", "", "b@t1", "  ", "c"])
    assert [token.caller.name for token in tokens] == ["token#1", "token#2", "token#3"]


def test_the_environment_variable_accepts_scoped_and_unscoped_entries(monkeypatch):
    monkeypatch.setenv("POSGATE_AUTH_TOKENS", "internal-1, kiosk-1@t1|t2 ,kiosk-2@t3")
    policy = CallerPolicy.from_settings(Settings(dev_mode=False))
    assert policy is not None
    assert [token.caller for token in policy.tokens] == [
        Caller("token#1", None),
        Caller("token#2", frozenset({"t1", "t2"})),
        Caller("token#3", frozenset({"t3"})),
    ]


def test_authentication_yields_the_caller_of_the_presented_secret():
    policy = _policy("internal-1", "kiosk-1@t1")
    assert _caller(policy, "internal-1") == Caller("token#1", None)
    assert _caller(policy, "kiosk-1") == Caller("token#2", frozenset({"t1"}))


def test_a_scoped_secret_must_be_presented_without_its_scope():
    with pytest.raises(Unauthenticated) as raised:
        _caller(_policy("kiosk-1@t1"), "kiosk-1@t1")
    assert raised.value.reason == "TOKEN_INVALID"


def test_two_secrets_for_one_scope_are_both_valid_for_rotation():
    policy = _policy("kiosk-old@t1", "kiosk-new@t1")
    old, new = _caller(policy, "kiosk-old"), _caller(policy, "kiosk-new")
    assert old.tenants == new.tenants == frozenset({"t1"})
    assert (old.name, new.name) == ("token#1", "token#2")


@pytest.mark.parametrize(
    ("entry", "complaint"),
    [
        (f"{SECRET}@", "empty tenant name"),
        (f"{SECRET}@t1||t2", "empty tenant name"),
        (f"{SECRET}@|t1", "empty tenant name"),
        (f"{SECRET}@t1| ", "empty tenant name"),
        (f"{SECRET}@@", "empty tenant name"),
        ("@t1", "no secret"),
        (" @t1", "no secret"),
    ],
)
def test_malformed_entries_stop_the_start_naming_the_entry_not_the_secret(entry, complaint):
    with pytest.raises(ServerConfigurationError, match=complaint) as raised:
        _policy("internal-1", entry)
    message = str(raised.value)
    assert "token#2" in message
    assert "<secret>@<tenant>|<tenant>" in message
    assert SECRET not in message
    assert "internal-1" not in message


def test_one_secret_in_two_entries_stops_the_start():
    with pytest.raises(ServerConfigurationError, match="token#1 and token#3") as raised:
        _policy(f"{SECRET}@t1", "other", f"{SECRET}@t2")
    assert SECRET not in str(raised.value)


def test_secrets_never_appear_in_the_policys_repr():
    policy = _policy(f"{SECRET}@t1", "internal-1")
    assert SECRET not in repr(policy)
    assert "internal-1" not in repr(policy)


def test_a_verified_client_certificate_acts_for_every_tenant_under_its_common_name():
    policy = CallerPolicy(tokens=(), accept_client_certificates=True)
    auth_context = {
        "transport_security_type": [b"ssl"],
        "x509_pem_cert": [b"-----BEGIN CERTIFICATE-----"],
        "x509_common_name": [b"inventory client\n"],
    }
    assert policy.authenticate((), auth_context) == Caller("cert:inventory_client_", None)
    del auth_context["x509_common_name"]
    assert policy.authenticate((), auth_context) == Caller("cert:-", None)
