"""The gateway's embedded uvicorn server: how it binds, and how its connections send.

These run on the tests' event loop, the standard library's asyncio one
(`POSGATE_EVENT_LOOP=asyncio`), where the listening socket decides whether accepted
connections get TCP_NODELAY.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from posgate.gateway.http.server import HttpServer


async def hello(_: Request) -> PlainTextResponse:
    return PlainTextResponse("hello")


APP = Starlette(routes=[Route("/", hello)])
REQUEST = b"GET / HTTP/1.1\r\nhost: test\r\n\r\n"


@asynccontextmanager
async def serving(port: int = 0, *, reuse_port: bool = False) -> AsyncIterator[HttpServer]:
    server = HttpServer(APP, "127.0.0.1", port, grace_s=0, reuse_port=reuse_port)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def get(port: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(REQUEST)
        return await reader.readuntil(b"hello")
    finally:
        writer.close()
        await writer.wait_closed()


async def test_accepted_connections_send_without_waiting_for_acks() -> None:
    async with serving() as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        try:
            writer.write(REQUEST)
            await reader.readuntil(b"hello")
            [accepted] = [
                connection.transport.get_extra_info("socket")
                for connection in server._server.server_state.connections
            ]
            # Without TCP_NODELAY a response written in two parts (head, then body) waits for
            # the client's delayed ACK, about 40 ms per keep-alive request.
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        finally:
            writer.close()
            await writer.wait_closed()


async def test_with_reuse_port_two_servers_share_one_port() -> None:
    async with serving(reuse_port=True) as first, serving(first.port, reuse_port=True) as second:
        assert second.port == first.port
        answers = await asyncio.gather(*(get(first.port) for _ in range(20)))
        assert all(answer.startswith(b"HTTP/1.1 200") for answer in answers)
    async with serving(reuse_port=True) as first:
        await second.stop()  # stopped already: a no-op
        assert (await get(first.port)).startswith(b"HTTP/1.1 200")


async def test_without_reuse_port_a_second_server_on_the_port_fails_naming_it() -> None:
    async with serving() as first:
        second = HttpServer(APP, "127.0.0.1", first.port, grace_s=0)
        with pytest.raises(OSError, match=f"HTTP 127.0.0.1:{first.port}: Address already in use"):
            await second.start()
        assert (await get(first.port)).startswith(b"HTTP/1.1 200")
