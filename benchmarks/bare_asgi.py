"""The HTTP baseline: a bare ASGI app that reads the request body and answers 200.

No framework, no routing, no database: what uvicorn (httptools) itself costs per POST. Run:
`python -m benchmarks.bare_asgi --port N [--loop uvloop|asyncio] [--reuse-port]`, one process,
one worker, like the gateway's HTTP server; with `--reuse-port` several of them share the port
(`SO_REUSEPORT`), as gateway processes do with `POSGATE_GATEWAY_HTTP_REUSE_PORT`.
"""

from __future__ import annotations

import argparse
import socket
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import uvicorn

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]

BODY = b'{"status":"accepted"}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(
    scope: Scope, receive: Callable[[], Awaitable[Message]], send: Callable[[Message], Awaitable[None]]
) -> None:
    """Drain the body, answer 200 with a small JSON document (the gateway's answer is about as big)."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = bool(message.get("more_body", False))
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


def main() -> None:
    """Serve `app` on 127.0.0.1 with httptools, one process, warnings only, no access log."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bare_asgi")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    parser.add_argument("--reuse-port", action="store_true", help="bind with SO_REUSEPORT")
    args = parser.parse_args()
    # IPPROTO_TCP, or the asyncio loop would not set TCP_NODELAY (`posgate.gateway.http.server`).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if args.reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", args.port))
    config = uvicorn.Config(
        app, loop=args.loop, http="httptools", lifespan="off", log_level="warning", access_log=False
    )
    # Handed over as the gateway's socket is; `fd=` would take it for a Unix socket.
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
