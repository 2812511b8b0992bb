"""The HTTP baselines: a bare ASGI app that reads the request body and answers 200, and the floor.

The bare app has no framework, no routing, no database: what uvicorn (httptools) itself costs
per POST. With `--app starlette`, the same answer comes from a Starlette route on the gateway's
webhook path, through the `Request` and `Response` objects the gateway's handlers use and
nothing else: what the gateway's framework costs before it does any work of its own (the
"floor" of docs/benchmarks.md). Run:
`python -m benchmarks.bare_asgi --port N [--loop uvloop|asyncio] [--app bare|starlette] [--reuse-port]`,
one process, one worker, like the gateway's HTTP server; with `--reuse-port` several of them
share the port (`SO_REUSEPORT`), as gateway processes do with `POSGATE_GATEWAY_HTTP_REUSE_PORT`.
"""

from __future__ import annotations

import argparse
import socket
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

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


async def _accept(request: Request) -> Response:
    """The gateway's answer to a new delivery, with none of its work: read the body, answer 202."""
    await request.body()
    return Response(orjson.dumps({"status": "accepted"}), status_code=202, media_type="application/json")


def starlette_app() -> Starlette:
    """A Starlette app with one route, on the gateway's webhook path, as the gateway builds its own."""
    route = Route("/v1/integrations/pos/{provider}/webhooks/{topic}", _accept, methods=["POST"])
    return Starlette(routes=[route])


def main() -> None:
    """Serve `app` (or `starlette_app()`) on 127.0.0.1 with httptools, one process, no access log."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bare_asgi")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    parser.add_argument("--app", choices=("bare", "starlette"), default="bare")
    parser.add_argument("--reuse-port", action="store_true", help="bind with SO_REUSEPORT")
    args = parser.parse_args()
    # IPPROTO_TCP, or the asyncio loop would not set TCP_NODELAY (`posgate.gateway.http.server`).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if args.reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", args.port))
    served = starlette_app() if args.app == "starlette" else app
    config = uvicorn.Config(
        served, loop=args.loop, http="httptools", lifespan="off", log_level="warning", access_log=False
    )
    # Handed over as the gateway's socket is; `fd=` would take it for a Unix socket.
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
