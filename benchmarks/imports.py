"""Bulk-import benchmark: rows per second of seller imports beside the cost of parsing alone.

Run from the repository root (about a minute; `--rows 50000` for a smoke run):

    .venv/bin/python -m benchmarks.imports

It creates a fresh PostgreSQL database, loads the seller's mappings, and for NDJSON and CSV
bodies of the same rows (0.1% bad) measures, in this process:

- parsing only: the streamed body split into lines and decoded (JSON / csv module);
- parse, validate and batch: the same plus mapping, validation and canonical commands, no I/O;
- the endpoint: `POST /v1/integrations/seller/{provider}/import` over httpx's ASGI transport,
  which also writes every chunk's commands, errors and counters to PostgreSQL.

The bodies are generated before timing starts. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import httpx
from starlette.applications import Starlette

from benchmarks import database, report
from benchmarks.cpu import before_run, probe_line
from benchmarks.report import machine_facts, rate, table
from posgate.db.engine import create_engine, session_factory
from posgate.gateway import mappings
from posgate.gateway.http import imports
from posgate.gateway.http.context import GatewayContext
from posgate.gateway.imports.batches import Batcher, ImportOrigin
from posgate.gateway.imports.lines import Row, decode_rows
from posgate.gateway.imports.rows import RowValidator
from posgate.gateway.imports.runner import Tuning, accept
from posgate.gateway.mappings import MappingEntry, MappingSnapshot
from posgate.gateway.tables import MappingKind
from posgate.settings import Settings

PROVIDER, MERCHANT, TENANT, TOKEN = "benchseller", "acct-1", "tenant-bench", "bench-token"
STORES, SKUS = 20, 5_000
GOAL = 50_000.0
CSV_HEADER = "kind,store,sku,on_hand,version,type,delta,key\n"
MEDIA = {"ndjson": "application/x-ndjson", "csv": "text/csv"}


def entries() -> list[MappingEntry]:
    """The seller's tenant, stores and SKUs."""
    found = [MappingEntry(PROVIDER, MERCHANT, MappingKind.TENANT, "", TENANT)]
    found += [
        MappingEntry(PROVIDER, MERCHANT, MappingKind.STORE, f"s{i}", f"store-{i}") for i in range(STORES)
    ]
    found += [MappingEntry(PROVIDER, MERCHANT, MappingKind.SKU, f"v{i}", f"SKU-{i}") for i in range(SKUS)]
    return found


def line(number: int, body_format: str) -> str:
    """Row `number`: counts and receipts alternating, every 1000th a negative count."""
    store, sku = f"s{number % STORES}", f"v{number % SKUS}"
    on_hand = -1 if number % 1000 == 0 else number % 97
    if body_format == "csv":
        if number % 2:
            return f"count,{store},{sku},{on_hand},{number},,,\n"
        return f"delta,{store},{sku},,,receipt,3,mv-{number}\n"
    if number % 2:
        return f'{{"kind":"count","store":"{store}","sku":"{sku}","on_hand":{on_hand},"version":{number}}}\n'
    return (
        f'{{"kind":"delta","store":"{store}","sku":"{sku}","type":"receipt","delta":3,"key":"mv-{number}"}}\n'
    )


def body(rows: int, body_format: str, chunk_rows: int = 800) -> list[bytes]:
    """The body as the chunks a client would send (about 64 KiB each)."""
    chunks = [CSV_HEADER.encode()] if body_format == "csv" else []
    for start in range(1, rows + 1, chunk_rows):
        stop = min(start + chunk_rows, rows + 1)
        chunks.append("".join(line(n, body_format) for n in range(start, stop)).encode())
    return chunks


async def stream(chunks: list[bytes]) -> AsyncIterator[bytes]:
    """The chunks as an async stream, as `request.stream()` yields them."""
    for chunk in chunks:
        yield chunk


async def parse_only(chunks: list[bytes], body_format: str) -> None:
    """Split and decode every row; nothing else."""
    async for _rows in decode_rows(body_format, stream(chunks)):
        pass


async def parse_and_batch(chunks: list[bytes], body_format: str) -> None:
    """Decode, validate, map and build the canonical commands, serialised; no database."""
    lookup = MappingSnapshot(PROVIDER, MERCHANT, entries())
    validate = RowValidator(PROVIDER, MERCHANT, lookup, typed=body_format == "ndjson").validate
    batcher = Batcher(ImportOrigin(PROVIDER, TENANT, MERCHANT, datetime.now(UTC)))
    rejected: list[Row] = []
    seen = 0
    async for rows in decode_rows(body_format, stream(chunks)):
        accept(rows, validate, batcher, rejected)
        seen += len(rows)
        if seen >= Tuning().chunk_rows:  # close batches where the endpoint commits
            seen = 0
            for command in batcher.drain():
                command.message.SerializeToString(deterministic=True)


def endpoint(url: str) -> Callable[[list[bytes], str], Awaitable[None]]:
    """The import endpoint on the database at `url`."""

    async def upload(chunks: list[bytes], body_format: str) -> None:
        engine = create_engine(url)
        try:
            settings = Settings(
                webhook_credentials=[{"provider": PROVIDER, "tenant": TENANT, "secrets": [TOKEN]}]
            )
            app = Starlette(routes=imports.ROUTES)
            app.state.ctx = GatewayContext(settings, session_factory(engine), {})
            headers = {"authorization": f"Bearer {TOKEN}", "content-type": MEDIA[body_format]}
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://bench", timeout=3600
            ) as client:
                path = f"/v1/integrations/seller/{PROVIDER}/import"
                response = await client.post(path, content=stream(chunks), headers=headers)
            if response.status_code != 202:
                raise RuntimeError(f"import answered {response.status_code}: {response.text}")
        finally:
            await engine.dispose()

    return upload


async def timed(
    rows: int, step: Callable[[list[bytes], str], Awaitable[None]], chunks: list[bytes], fmt: str
) -> float:
    """Rows per second of one run of `step`."""
    started = time.perf_counter()
    await step(chunks, fmt)
    return rows / (time.perf_counter() - started)


async def run(server: database.Server, rows: int) -> list[report.Row]:
    """Every figure, NDJSON then CSV."""
    table_rows: list[report.Row] = []
    async with database.fresh_database(server) as url:
        engine = create_engine(url)
        try:
            async with session_factory(engine)() as session:
                await mappings.upsert(session, entries(), datetime.now(UTC))
                await session.commit()
        finally:
            await engine.dispose()
        for fmt in ("ndjson", "csv"):
            chunks = body(rows, fmt)
            parsed = await timed(rows, parse_only, chunks, fmt)
            batched = await timed(rows, parse_and_batch, chunks, fmt)
            imported = await timed(rows, endpoint(url), chunks, fmt)
            goal = f">= {rate(GOAL)}"
            table_rows += [
                report.Row(
                    f"{fmt}: parse, validate, batch (no I/O)", rate(batched), f"parse only {rate(parsed)}"
                ),
                report.Row(
                    f"{fmt}: import endpoint, PostgreSQL",
                    rate(imported),
                    f"parse only {rate(parsed)}",
                    goal,
                    imported >= GOAL,
                ),
            ]
    return table_rows


async def main_async(server: database.Server, rows: int) -> None:
    """Print the facts and the table."""
    print("\n".join(machine_facts(await database.durability(server))), flush=True)
    print("\n".join(await before_run()), flush=True)
    print(f"rows        {rows:,} per body, 0.1% bad; {STORES} stores, {SKUS:,} SKUs\n", flush=True)
    print(table(await run(server, rows)))
    print(probe_line("after run"))


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m benchmarks.imports`."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.imports",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rows", type=int, default=200_000, help="rows per body (default 200,000)")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("POSGATE_BENCH_POSTGRES", "postgresql+asyncpg://postgres@127.0.0.1:5432"),
        help="PostgreSQL server (a user allowed to create databases); env POSGATE_BENCH_POSTGRES",
    )
    args = parser.parse_args(argv)
    asyncio.run(main_async(database.Server.from_url(args.postgres), args.rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
