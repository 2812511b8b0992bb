"""Transport security for servers: TLS from the certificate settings, mTLS with a client CA."""

from __future__ import annotations

import ssl
from pathlib import Path

import grpc

from posgate.runtime.auth import ServerConfigurationError
from posgate.settings import Settings


def server_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """Build TLS credentials from the settings, or None to serve plaintext.

    With `tls_client_ca_file` set, every client must present a certificate signed by that CA
    (mTLS); the TLS handshake rejects the others before any RPC runs.

    Raises:
        ServerConfigurationError: When only part of the TLS settings is given.

    """
    cert, key, client_ca = settings.tls_cert_file, settings.tls_key_file, settings.tls_client_ca_file
    if cert is None and key is None:
        if client_ca is not None:
            raise ServerConfigurationError("POSGATE_TLS_CLIENT_CA_FILE needs TLS_CERT_FILE and TLS_KEY_FILE")
        return None
    if cert is None or key is None:
        raise ServerConfigurationError("POSGATE_TLS_CERT_FILE and POSGATE_TLS_KEY_FILE go together")
    return grpc.ssl_server_credentials(
        [(_read(key, "TLS key"), _read(cert, "TLS certificate"))],
        root_certificates=_read(client_ca, "client CA") if client_ca else None,
        require_client_auth=client_ca is not None,
    )


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise ServerConfigurationError(f"cannot read the {what} file {path}: {error.strerror}") from error


def edge_ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The stream edge's TLS, from the same settings as `server_credentials`, or None for plaintext.

    HTTP/2 only (ALPN `h2`, as gRPC clients offer); with `tls_client_ca_file`, a client
    certificate signed by that CA is required, as on the gRPC port.

    Raises:
        ServerConfigurationError: When only part of the TLS settings is given or a file is unreadable.

    """
    cert, key = settings.tls_cert_file, settings.tls_key_file
    if server_credentials(settings) is None or cert is None or key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["h2"])
    context.load_cert_chain(cert, key)
    if settings.tls_client_ca_file:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cafile=settings.tls_client_ca_file)
    return context
