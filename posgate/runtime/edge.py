"""The stream edge: a component's gRPC methods on a port of their own, without `grpc.aio`.

`grpc.aio` spends about 29 KiB and one C-core call per open stream, and a write per stream
and message; 10,000 kiosk streams on one change took 0.7 s on this project's benchmark machine
even with a bare echo handler. The edge speaks gRPC's HTTP/2 wire format itself (framing by
the sans-IO `h2` library): a stream is a small record and a task, and one change to every
stream of a connection is one socket write. A unary call there costs less CPU than on the gRPC
port too. Clients use it with any gRPC library, unchanged; only the address differs. It serves
the methods it is given and answers UNIMPLEMENTED to the rest, with the same authentication,
error details and log line as the component's gRPC port.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Iterable, Mapping, Sequence
from typing import cast

from posgate.runtime.auth import CallerPolicy, ServerConfigurationError
from posgate.runtime.edge_calls import CallSettings, EdgeMethod
from posgate.runtime.edge_connection import EdgeConnection

_logger = logging.getLogger("posgate.runtime")
DEFAULT_REQUEST_LIMIT = 64 * 1024
# What a gRPC port takes by default (grpc's own receive limit): the edge's unary methods take the same.
UNARY_REQUEST_LIMIT = 4 * 1024 * 1024
# Request bytes one connection may hold before their requests end (its streams' bodies together).
DEFAULT_BUFFER_LIMIT = 16 * 1024 * 1024
DEFAULT_STREAMS_PER_CONNECTION = 1000
_HOST_AND_PORT = 2


class StreamEdge:
    """Serves `methods` over HTTP/2 on one port until drained."""

    def __init__(
        self,
        component: str,
        methods: Sequence[EdgeMethod],
        policy: CallerPolicy | None,
        *,
        request_limit: int = DEFAULT_REQUEST_LIMIT,
        max_streams_per_connection: int = DEFAULT_STREAMS_PER_CONNECTION,
        buffer_limit: int = DEFAULT_BUFFER_LIMIT,
    ) -> None:
        """An edge of `component`; `policy` None serves without authentication (dev mode)."""
        self.component = component
        self.methods = {method.path: method for method in methods}
        self.request_limit = request_limit
        self.max_streams_per_connection = max_streams_per_connection
        self.buffer_limit = buffer_limit
        self.call_settings = CallSettings(policy, logging.getLogger("posgate.rpc"), component, request_limit)
        self.connections: set[EdgeConnection] = set()
        self.port = 0
        self._server: asyncio.Server | None = None
        self._idle: asyncio.Event | None = None

    async def start(self, host: str, port: int, tls: ssl.SSLContext | None = None) -> int:
        """Listen on `host:port` (0 picks a free port); return the bound port.

        Raises:
            ServerConfigurationError: The address cannot be bound.

        """
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(
                lambda: EdgeConnection(self), host, port, ssl=tls, backlog=4096, reuse_address=True
            )
        except OSError as error:
            raise ServerConfigurationError(f"cannot bind {host}:{port}: {error.strerror}") from error
        self.port = self._server.sockets[0].getsockname()[1]
        _logger.info(
            "stream edge started component=%s address=%s:%d tls=%s methods=%s",
            self.component,
            host,
            self.port,
            "on" if tls else "off",
            ",".join(self.methods),
        )
        return self.port

    async def drain(self, grace_s: float) -> None:
        """Stop accepting; give open calls `grace_s` to end, then send GOAWAY and close.

        The component ends its streams first (the stock hub answers them UNAVAILABLE), so
        clients resume on another replica with nothing lost.
        """
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        if self._open_calls():
            self._idle = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), grace_s)
            self._idle = None
        for connection in list(self.connections):
            connection.close(goaway=True)
        await server.wait_closed()
        _logger.info("stream edge stopped component=%s port=%d", self.component, self.port)

    def call_ended(self) -> None:
        """A connection's call ended: a drain waiting for the last one may go on."""
        if self._idle is not None and not self._open_calls():
            self._idle.set()

    def _open_calls(self) -> int:
        return sum(connection.open_calls() for connection in self.connections)

    def describe_peer(self, transport: asyncio.BaseTransport) -> tuple[str, Mapping[str, Iterable[bytes]]]:
        """The peer as gRPC names it (`ipv4:host:port`), and its auth context under TLS."""
        address = transport.get_extra_info("peername")
        if isinstance(address, tuple) and len(address) >= _HOST_AND_PORT:
            host, port = address[0], address[1]
            peer = f"ipv6:[{host}]:{port}" if ":" in str(host) else f"ipv4:{host}:{port}"
        else:
            peer = "unknown"
        tls = transport.get_extra_info("ssl_object")
        return peer, ({} if tls is None else _tls_auth_context(tls))


def _tls_auth_context(tls: ssl.SSLObject) -> dict[str, list[bytes]]:
    """What `grpc.aio` reports for a TLS peer, as far as `CallerPolicy` reads it."""
    context: dict[str, list[bytes]] = {"transport_security_type": [b"ssl"]}
    der = tls.getpeercert(binary_form=True)
    if der:
        # Only a verified certificate gets here: the context requires one whenever a CA is set.
        context["x509_pem_cert"] = [ssl.DER_cert_to_PEM_cert(der).encode()]
        peer = tls.getpeercert() or {}
        subject = cast("tuple[tuple[tuple[str, str], ...], ...]", peer.get("subject", ()))
        names = [value for rdn in subject for key, value in rdn if key == "commonName"]
        context["x509_common_name"] = [str(name).encode() for name in names[:1]]
    return context
