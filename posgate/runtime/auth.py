"""Authentication of internal callers: a bearer token, or a verified client certificate (mTLS).

On unless `dev_mode`; a server outside dev mode refuses to start without a way to authenticate.
The standard health service stays open so that orchestrators can probe without secrets. An
authenticated call runs with its `Caller` (name and tenant scope) current, see
`posgate.runtime.caller`; the check itself runs in `posgate.runtime.interceptors`.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from grpc_health.v1 import health

from posgate.errors import Unauthenticated
from posgate.runtime.call import metadata_value
from posgate.runtime.caller import Caller
from posgate.settings import Settings

AUTHORIZATION_KEY = "authorization"
UNAUTHENTICATED_METHOD_PREFIXES: tuple[str, ...] = (f"/{health.SERVICE_NAME}/",)
SCOPE_SEPARATOR = "@"
TENANT_SEPARATOR = "|"
_ENTRY_SYNTAX = "<secret> or <secret>@<tenant>|<tenant>..."
# Certificate names reach log lines; anything but plain characters is replaced.
_UNSAFE_NAME_CHARACTERS = re.compile(r"[^A-Za-z0-9._:@\-]")


class ServerConfigurationError(Exception):
    """The settings would start a server that is insecure or cannot work."""


@dataclass(frozen=True)
class BearerToken:
    """One accepted bearer token and the caller it authenticates.

    Attributes:
        secret: What the caller presents; kept out of `repr` so it never reaches a log.
        caller: Who presenting it makes the call, with the tenants it may act for.

    """

    secret: bytes = field(repr=False)
    caller: Caller


def parse_auth_tokens(entries: Sequence[str]) -> tuple[BearerToken, ...]:
    """Parse `POSGATE_AUTH_TOKENS` entries; blank entries are skipped.

    Each entry is `<secret>` (every tenant) or `<secret>@<tenant>|<tenant>...` (only those);
    the scope is what follows the last `@`. Callers are named `token#<n>`, n counting the
    non-blank entries from 1.

    Raises:
        ServerConfigurationError: On an empty secret or tenant name, or a secret given twice;
            the message names the entry by position, never by its secret.

    """
    tokens: list[BearerToken] = []
    for entry in (entry.strip() for entry in entries):
        if entry:
            tokens.append(_parse_entry(entry, f"token#{len(tokens) + 1}"))
    _refuse_repeated_secrets(tokens)
    return tuple(tokens)


def _parse_entry(entry: str, name: str) -> BearerToken:
    if SCOPE_SEPARATOR not in entry:
        return BearerToken(entry.encode(), Caller(name, None))
    secret, _, scope = entry.rpartition(SCOPE_SEPARATOR)
    tenants = [tenant.strip() for tenant in scope.split(TENANT_SEPARATOR)]
    if not secret.strip():
        raise ServerConfigurationError(
            f"POSGATE_AUTH_TOKENS entry {name} has no secret before '@' (expected {_ENTRY_SYNTAX})"
        )
    if not all(tenants):
        raise ServerConfigurationError(
            f"POSGATE_AUTH_TOKENS entry {name} has an empty tenant name in its scope "
            f"(expected {_ENTRY_SYNTAX})"
        )
    return BearerToken(secret.strip().encode(), Caller(name, frozenset(tenants)))


def _refuse_repeated_secrets(tokens: Sequence[BearerToken]) -> None:
    # One secret with two scopes would make the caller's scope depend on the entry order.
    first_by_secret: dict[bytes, str] = {}
    for token in tokens:
        earlier = first_by_secret.setdefault(token.secret, token.caller.name)
        if earlier != token.caller.name:
            raise ServerConfigurationError(
                f"POSGATE_AUTH_TOKENS entries {earlier} and {token.caller.name} have the same secret; "
                "give every entry its own secret"
            )


@dataclass(frozen=True)
class CallerPolicy:
    """Which credentials a server accepts.

    Attributes:
        tokens: Accepted bearer tokens; several at once so that they can be rotated.
        accept_client_certificates: Whether a client certificate verified by the TLS layer
            authenticates a call on its own (mTLS configured); such callers may act for every
            tenant.

    """

    tokens: tuple[BearerToken, ...]
    accept_client_certificates: bool

    @classmethod
    def from_settings(cls, settings: Settings) -> CallerPolicy | None:
        """Build the policy for the settings; None in dev mode, where callers are not checked.

        Raises:
            ServerConfigurationError: Outside dev mode when neither tokens nor mTLS are set, or
                when a token entry is malformed.

        """
        if settings.dev_mode:
            return None
        # Parsed here rather than in Settings: pydantic's validation errors echo the raw input,
        # which would put every secret of the list into the start-up error.
        tokens = parse_auth_tokens([token.get_secret_value() for token in settings.auth_tokens])
        mtls = settings.tls_client_ca_file is not None
        if not tokens and not mtls:
            raise ServerConfigurationError(
                "refusing to start without caller authentication: set POSGATE_AUTH_TOKENS "
                "(comma-separated bearer tokens) or POSGATE_TLS_CLIENT_CA_FILE (mTLS), "
                "or POSGATE_DEV_MODE=true for a local dev server"
            )
        return cls(tokens=tokens, accept_client_certificates=mtls)

    def authenticate(
        self, metadata: Sequence[tuple[str, str | bytes]] | None, auth_context: Mapping[str, Iterable[bytes]]
    ) -> Caller:
        """Identify the caller or raise.

        Args:
            metadata: The call's invocation metadata.
            auth_context: The transport's view of the peer (`ServicerContext.auth_context()`).

        Returns:
            The caller: `cert:<subject CN>` for a verified client certificate (every tenant),
            otherwise the `token#<n>` whose secret was presented, with that entry's scope.

        Raises:
            Unauthenticated: With reason CREDENTIALS_MISSING, CREDENTIALS_MALFORMED or
                TOKEN_INVALID; the presented token never appears in the error.

        """
        if self.accept_client_certificates and _has_verified_certificate(auth_context):
            return _certificate_caller(auth_context)
        header = metadata_value(metadata, AUTHORIZATION_KEY)
        if header is None:
            raise Unauthenticated("no credentials presented", reason="CREDENTIALS_MISSING")
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("authorization must be 'Bearer <token>'", reason="CREDENTIALS_MALFORMED")
        caller = self._known(token.strip().encode())
        if caller is None:
            raise Unauthenticated("the bearer token is not valid", reason="TOKEN_INVALID")
        return caller

    def _known(self, presented: bytes) -> Caller | None:
        # Compare against every token, without stopping early, so timing tells nothing;
        # secrets are unique (checked at start-up), so at most one matches.
        matched: Caller | None = None
        for token in self.tokens:
            if hmac.compare_digest(presented, token.secret):
                matched = token.caller
        return matched


def _has_verified_certificate(auth_context: Mapping[str, Iterable[bytes]]) -> bool:
    # The server requires and verifies client certificates whenever a client CA is set, so an
    # SSL peer that shows a certificate here has passed verification against that CA.
    transport = list(auth_context.get("transport_security_type", ()))
    return transport == [b"ssl"] and bool(list(auth_context.get("x509_pem_cert", ())))


def _certificate_caller(auth_context: Mapping[str, Iterable[bytes]]) -> Caller:
    # Only our own CA issues client certificates, to internal services: they act for every tenant.
    common_names = list(auth_context.get("x509_common_name", ()))
    common_name = common_names[0].decode(errors="replace") if common_names else ""
    return Caller(f"cert:{_UNSAFE_NAME_CHARACTERS.sub('_', common_name)[:64] or '-'}", None)
