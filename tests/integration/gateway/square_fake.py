"""A local stand-in for Square's API, for the fetch tests of Square orders and catalogs.

It serves RetrieveOrder (`GET /v2/orders/{order_id}`) and SearchCatalogObjects
(`POST /v2/catalog/search`) over real HTTP, so the gateway's httpx clients run unchanged.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from posgate.gateway.http.server import HttpServer
from posgate.gateway.tables import CommandState, commands, failures
from tests.unit.gateway.adapters.square.cases import CASES
from tests.unit.gateway.adapters.square.catalog_cases import CURSOR, page

ORDER = json.loads((Path(CASES.fixtures) / "retrieve_order_response.json").read_text())


@dataclass
class FakeSquare:
    """Answers queued (status, body) pairs first, then the recorded ones; keeps every request.

    Attributes:
        answers: Answers for the next requests, whichever endpoint they call.
        seen: Each request's headers and `path`.
        searches: Each SearchCatalogObjects request body.
        catalog: The recorded SearchCatalogObjects pages by the cursor that asks for them.

    """

    answers: list[tuple[int, object]] = field(default_factory=list)
    seen: list[dict[str, str]] = field(default_factory=list)
    searches: list[Any] = field(default_factory=list)
    catalog: dict[str, object] = field(default_factory=lambda: {"": page(1), CURSOR: page(2)})

    async def retrieve(self, request: Request) -> JSONResponse:
        self.seen.append({**request.headers, "path": request.url.path})
        return self._answer(ORDER)

    async def search(self, request: Request) -> JSONResponse:
        self.seen.append({**request.headers, "path": request.url.path})
        body = await request.json()
        self.searches.append(body)
        return self._answer(self.catalog.get(body.get("cursor", ""), {"errors": [{"code": "BAD_CURSOR"}]}))

    def _answer(self, recorded: object) -> JSONResponse:
        status, body = self.answers.pop(0) if self.answers else (200, recorded)
        return JSONResponse(body, status_code=status)


@asynccontextmanager
async def serving(fake: FakeSquare) -> AsyncIterator[str]:
    """Serve `fake` on a free local port; its base URL."""
    app = Starlette(
        routes=[
            Route("/v2/orders/{order_id}", fake.retrieve),
            Route("/v2/catalog/search", fake.search, methods=["POST"]),
        ]
    )
    server = HttpServer(app, "127.0.0.1", 0, grace_s=0)
    await server.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        await server.stop()


async def fake_square() -> AsyncIterator[tuple[FakeSquare, str]]:
    """A served `FakeSquare` and its base URL; the body of each test module's `square` fixture."""
    fake = FakeSquare()
    async with serving(fake) as base:
        yield fake, base


@dataclass
class Clock:
    """A clock the test moves."""

    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __call__(self) -> datetime:
        return self.now


async def command_row(sessions, command_id: int):
    """The `gw_commands` row of `command_id`."""
    async with sessions() as session:
        return (await session.execute(select(commands).where(commands.c.id == command_id))).one()


async def failure_rows(sessions) -> list:
    """Every `gw_failures` row, oldest first."""
    async with sessions() as session:
        return list((await session.execute(select(failures).order_by(failures.c.id))).all())


async def retried_after_backoff(sessions, fetcher, clock: Clock, command_id: int, error: str):
    """Fetch into a failure the fetcher retries (`error` in `last_error`), then past the backoff.

    The command's row once the retry completed it.
    """
    assert await fetcher.fetch_due() == 1
    row = await command_row(sessions, command_id)
    assert (row.state, row.attempts) == (CommandState.AWAITING_FETCH, 1)
    assert error in row.last_error
    assert await fetcher.fetch_due() == 0  # backing off

    clock.now += timedelta(minutes=5)
    assert await fetcher.fetch_due() == 1
    row = await command_row(sessions, command_id)
    assert (row.state, row.attempts, row.last_error) == (CommandState.AWAITING_SERVICE, 2, None)
    return row
