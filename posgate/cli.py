"""The `posgate` command: `dev`, `serve <component>`, `migrate` and `failures`."""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import logging
import sys
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

import uvloop

from posgate import failures_cli
from posgate.settings import EventLoop, EventTransport, Settings

T = TypeVar("T")

COMPONENTS = ("gateway", "inventory", "routing", "returns")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="posgate", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    dev = commands.add_parser("dev", help="every component in one process on SQLite, in-process events")
    dev.add_argument("--database-url", help="override POSGATE_DATABASE_URL (default ./posgate.db)")
    serve = commands.add_parser("serve", help="one component with production settings")
    serve.add_argument("component", choices=COMPONENTS)
    migrate = commands.add_parser("migrate", help="apply database migrations")
    migrate.add_argument("--revision", default="head", help="target revision (default: head)")
    failures_cli.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `posgate` console script."""
    # A crash inside a C extension (grpcio, asyncpg) then still names the Python frames.
    faulthandler.enable()
    args = _parser().parse_args(argv)
    if args.command == "dev":
        settings = Settings(dev_mode=True, event_transport=EventTransport.INPROCESS)
        if args.database_url:
            settings = settings.model_copy(update={"database_url": args.database_url})
    else:
        settings = Settings()
    _configure_logging(settings.log_level)
    if args.command == "failures":
        return _run(settings, failures_cli.run(args, settings, sys.stdout, sys.stderr))

    from posgate import bootstrap  # noqa: PLC0415  (late: settings errors surface before the gRPC stack loads)

    if args.command == "migrate":
        bootstrap.migrate(settings, args.revision)
        return 0
    components = COMPONENTS if args.command == "dev" else (args.component,)
    try:
        _run(settings, bootstrap.run(settings, components))
    except bootstrap.StartupError as error:
        print(f"posgate: {error}", file=sys.stderr)
        return 2
    return 0


def _run(settings: Settings, main: Coroutine[Any, Any, T]) -> T:
    """Run `main` to completion on the event loop the settings choose."""
    factory = uvloop.new_event_loop if settings.event_loop == EventLoop.UVLOOP else None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)


def _configure_logging(level: str) -> None:
    # The format below uses no caller, thread or process fields, yet each is looked up for
    # every record: about 2 of the 10 µs a per-RPC line cost in Python here (the Logging
    # HOWTO's "Optimization" section names these switches, `_srcfile` included).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging.basicConfig(
        level=level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    # Alembic narrates every plugin it loads at INFO; the migration lines themselves stay.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


if __name__ == "__main__":
    sys.exit(main())
