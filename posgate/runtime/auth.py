"""Authentication of internal callers: a bearer token, or a verified client certificate (mTLS).

On unless `dev_mode`; a server outside dev mode refuses to start without a way to authenticate.
The standard health service stays open so that orchestrators can probe without secrets.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
from grpc_health.v1 import health

from posgate.errors import Unauthenticated
from posgate.runtime.interceptors import guarded, metadata_value
from posgate.settings import Settings

if TYPE_CHECKING:
    from posgate.runtime.interceptors import Context, Continuation

AUTHORIZATION_KEY = "authorization"
UNAUTHENTICATED_METHOD_PREFIXES: tuple[str, ...] = (f"/{health.SERVICE_NAME}/",)


class ServerConfigurationError(Exception):
    """The settings would start a server that is insecure or cannot work."""


@dataclass(frozen=True)
class CallerPolicy:
    """Which credentials a server accepts.

    Attributes:
        tokens: Accepted bearer tokens; several at once so that they can be rotated.
        accept_client_certificates: Whether a client certificate verified by the TLS layer
            authenticates a call on its own (mTLS configured).

    """

    tokens: tuple[bytes, ...]
    accept_client_certificates: bool

    @classmethod
    def from_settings(cls, settings: Settings) -> CallerPolicy | None:
        """Build the policy for the settings; None in dev mode, where callers are not checked.

        Raises:
            ServerConfigurationError: Outside dev mode when neither tokens nor mTLS are set.

        """
        if settings.dev_mode:
            return None
        tokens = tuple(t.get_secret_value().encode() for t in settings.auth_tokens if t.get_secret_value())
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
    ) -> None:
        """Accept the call or raise.

        Args:
            metadata: The call's invocation metadata.
            auth_context: The transport's view of the peer (`ServicerContext.auth_context()`).

        Raises:
            Unauthenticated: With reason CREDENTIALS_MISSING, CREDENTIALS_MALFORMED or
                TOKEN_INVALID; the presented token never appears in the error.

        """
        if self.accept_client_certificates and _has_verified_certificate(auth_context):
            return
        header = metadata_value(metadata, AUTHORIZATION_KEY)
        if header is None:
            raise Unauthenticated("no credentials presented", reason="CREDENTIALS_MISSING")
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("authorization must be 'Bearer <token>'", reason="CREDENTIALS_MALFORMED")
        if not self._known(token.strip().encode()):
            raise Unauthenticated("the bearer token is not valid", reason="TOKEN_INVALID")

    def _known(self, presented: bytes) -> bool:
        # Compare against every token, without stopping early, so timing tells nothing.
        matched = False
        for token in self.tokens:
            matched |= hmac.compare_digest(presented, token)
        return matched


def _has_verified_certificate(auth_context: Mapping[str, Iterable[bytes]]) -> bool:
    # The server requires and verifies client certificates whenever a client CA is set, so an
    # SSL peer that shows a certificate here has passed verification against that CA.
    transport = list(auth_context.get("transport_security_type", ()))
    return transport == [b"ssl"] and bool(list(auth_context.get("x509_pem_cert", ())))


class AuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]  # generic in grpc-stubs only
    """Rejects calls without acceptable credentials with UNAUTHENTICATED.

    Must sit inside `ErrorMappingInterceptor`, which turns the `Unauthenticated` it raises into
    a status with `ErrorInfo` details.
    """

    def __init__(
        self, policy: CallerPolicy, open_prefixes: Sequence[str] = UNAUTHENTICATED_METHOD_PREFIXES
    ) -> None:
        """Create the interceptor; methods starting with `open_prefixes` need no credentials."""
        self._policy = policy
        self._open_prefixes = tuple(open_prefixes)

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler[Any, Any]:
        """Wrap the handler with a credentials check, unless the method is open."""
        handler = await continuation(handler_call_details)
        if handler is None or handler_call_details.method.startswith(self._open_prefixes):
            return handler
        return guarded(handler, functools.partial(self._check, handler_call_details.invocation_metadata))

    @asynccontextmanager
    async def _check(
        self, metadata: Sequence[tuple[str, str | bytes]] | None, context: Context
    ) -> AsyncIterator[None]:
        self._policy.authenticate(metadata, context.auth_context())
        yield
