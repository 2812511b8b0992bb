"""Serves the gateway's ASGI app with uvicorn inside the running posgate process.

uvicorn runs on the process's event loop (`loop="none"`) as one more task. Two things differ
from `uvicorn.run`: posgate binds the socket itself (a bind error raises at start instead of
uvicorn's `sys.exit`, and port 0 reports the port it got), and uvicorn does not install
signal handlers, because SIGTERM belongs to `posgate.runtime.server.run_until_signalled`,
which stops the gRPC servers and then the components (this server among them).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import socket
from collections.abc import Generator

import uvicorn
from starlette.types import ASGIApp


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves the process's signal handling alone."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        """Do nothing: the process's own shutdown path stops this server."""
        yield


class HttpServer:
    """One uvicorn server task; `start()` binds and serves, `stop()` drains and ends it."""

    def __init__(
        self, app: ASGIApp, host: str, port: int, *, grace_s: float, reuse_port: bool = False
    ) -> None:
        """Serve `app` on host:port (0 picks a free port) once started.

        With `reuse_port`, the socket is bound with SO_REUSEPORT: other processes that do the
        same may bind the same host:port, and the kernel spreads new connections over them.
        Without it, a second process on the port fails to start.
        """
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            loop="none",
            lifespan="off",
            log_config=None,
            access_log=False,
            http="httptools",
            timeout_graceful_shutdown=max(1, math.ceil(grace_s)),
        )
        self._server = _EmbeddedServer(config)
        self._host = host
        self._port = port
        self._reuse_port = reuse_port
        self._socket: socket.socket | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        """The bound port (after `start()`)."""
        if self._socket is None:
            return self._port
        return int(self._socket.getsockname()[1])

    async def start(self) -> None:
        """Bind and serve; returns once uvicorn accepts connections.

        Raises:
            OSError: The address cannot be bound.
            RuntimeError: uvicorn stopped while starting.

        """
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        # IPPROTO_TCP named, not left 0: the asyncio loop sets TCP_NODELAY on accepted
        # connections only when the listening socket says TCP, and without it a response
        # written in two parts waits for the client's delayed ACK (about 40 ms).
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if self._reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            sock.bind((self._host, self._port))
        except OSError as error:
            sock.close()
            # Name the address: "Address already in use" alone does not say which of the ports.
            raise OSError(error.errno, f"HTTP {self._host}:{self._port}: {error.strerror}") from error
        sock.set_inheritable(True)
        self._socket = sock
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="gateway-http")
        while not self._server.started:
            if self._task.done():
                await self._task
                raise RuntimeError("gateway HTTP server stopped while starting")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        """Stop accepting, let in-flight requests finish (up to the grace), then end."""
        if self._task is None:
            return
        self._server.should_exit = True
        await self._task
        self._task = None
