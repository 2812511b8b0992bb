"""`posgate failures list|show|replay`: inspect and replay gateway failures on the database.

Works directly on `POSGATE_DATABASE_URL`, without a running gateway. Exit codes: 0 ok, 1 some
replays failed, 2 usage.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TextIO

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from posgate.db.engine import create_engine, session_factory
from posgate.gateway.failures import FailureFilter, FailureView, get_failure, list_failures, replay
from posgate.gateway.http.admin import SUCCESS, replay_secrets
from posgate.settings import Settings

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
BAR_WIDTH = 20
COLUMNS = ("ID", "CLASS", "REASON", "PROVIDER", "TOPIC", "TENANT", "STORE", "STORES", "CREATED")


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `failures` and its subcommands on the `posgate` parser."""
    failures = commands.add_parser("failures", help="list, inspect and replay gateway failures")
    actions = failures.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="open failures, most impactful first")
    _filters(listing)
    listing.add_argument("--since", type=_timestamp, help="ISO 8601 time with zone")
    listing.add_argument("--limit", type=int, default=100)
    show = actions.add_parser("show", help="one failure and its raw payload")
    show.add_argument("id", type=int)
    again = actions.add_parser("replay", help="replay failures by id, or every open one matching filters")
    again.add_argument("ids", nargs="*", type=int)
    _filters(again)
    again.add_argument("--all", action="store_true", help="every open failure matching the filters")
    again.add_argument("--limit", type=int, default=10_000)


def _filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--class", dest="failure_class", help="auth, mapping, validation, processing")
    parser.add_argument("--provider")
    parser.add_argument("--tenant")
    parser.add_argument("--store")


def _timestamp(raw: str) -> datetime:
    value = datetime.fromisoformat(raw)
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError("needs a time zone, e.g. 2024-05-01T09:00:00Z")
    return value


async def run(args: argparse.Namespace, settings: Settings, out: TextIO, err: TextIO) -> int:
    """Run one `failures` subcommand; returns the exit code."""
    if args.action == "replay" and not _replay_selection_ok(args):
        print("posgate failures replay: give failure ids, or --all with optional filters", file=err)
        return EXIT_USAGE
    engine = create_engine(settings.database_url)
    try:
        sessions = session_factory(engine)
        if args.action == "list":
            return await _list(sessions, args, out)
        if args.action == "show":
            return await _show(sessions, args.id, out, err)
        return await _replay(sessions, args, settings, out, err)
    finally:
        await engine.dispose()


def _replay_selection_ok(args: argparse.Namespace) -> bool:
    filtered = any((args.failure_class, args.provider, args.tenant, args.store))
    if args.ids:
        return not (filtered or args.all)
    return bool(args.all)


def _where(args: argparse.Namespace) -> FailureFilter:
    since = getattr(args, "since", None)
    return FailureFilter(args.failure_class, args.provider, args.tenant, args.store, since)


async def _list(sessions: async_sessionmaker[AsyncSession], args: argparse.Namespace, out: TextIO) -> int:
    async with sessions() as session:
        views = await list_failures(session, _where(args), args.limit)
    print(table([_row(view) for view in views]), file=out)
    return EXIT_OK


def _row(view: FailureView) -> tuple[str, ...]:
    return (
        str(view.id),
        view.failure_class,
        view.reason,
        view.provider,
        view.topic,
        view.tenant_id or "-",
        view.store_id or "-",
        str(view.affected_stores),
        view.created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )


def table(rows: Sequence[tuple[str, ...]], header: tuple[str, ...] = COLUMNS) -> str:
    """Rows as left-aligned columns under a header."""
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=False)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in [header, *rows]
    ]
    return "\n".join(line.rstrip() for line in lines)


async def _show(sessions: async_sessionmaker[AsyncSession], failure_id: int, out: TextIO, err: TextIO) -> int:
    async with sessions() as session:
        found = await get_failure(session, failure_id)
    if found is None:
        print(f"posgate failures: no failure {failure_id}", file=err)
        return EXIT_FAILED
    view, raw = found
    print(table([_row(view)]), file=out)
    print(f"detail: {view.detail}", file=out)
    if raw is None:
        print("payload: none (a stored command failed to send)", file=out)
        return EXIT_OK
    print(f"payload {raw.id}: {raw.topic} {raw.url} received {raw.received_at.isoformat()}", file=out)
    for name, value in sorted(raw.headers.items()):
        print(f"  {name}: {value}", file=out)
    print(raw.body.decode("utf-8", errors="replace"), file=out)
    return EXIT_OK


def progress(done: int, total: int, width: int = BAR_WIDTH) -> str:
    """`replayed 120/500 [=====               ] 24%`."""
    filled = width * done // total if total else width
    percent = 100 * done // total if total else 100
    return f"replayed {done}/{total} [{'=' * filled}{' ' * (width - filled)}] {percent}%"


async def _replay(
    sessions: async_sessionmaker[AsyncSession],
    args: argparse.Namespace,
    settings: Settings,
    out: TextIO,
    err: TextIO,
) -> int:
    ids: list[int] = list(args.ids)
    if not ids:
        async with sessions() as session:
            ids = [view.id for view in await list_failures(session, _where(args), args.limit)]
    secrets_for = replay_secrets(settings)
    rows: list[tuple[str, ...]] = []
    failed = 0
    for done, failure_id in enumerate(ids, start=1):
        (result,) = await replay(sessions, [failure_id], datetime.now(UTC), secrets_for=secrets_for)
        failed += result.outcome not in SUCCESS
        created = ",".join(str(command_id) for command_id in result.created_command_ids) or "-"
        rows.append((str(failure_id), result.outcome, result.reason or "-", created))
        if len(ids) > 1:
            print("\r" + progress(done, len(ids)), end="", file=err, flush=True)
    if len(ids) > 1:
        print(file=err)
    print(table(rows, ("ID", "OUTCOME", "REASON", "NEW COMMANDS")), file=out)
    print(f"{len(ids) - failed} replayed, {failed} failed", file=out)
    return EXIT_FAILED if failed else EXIT_OK
