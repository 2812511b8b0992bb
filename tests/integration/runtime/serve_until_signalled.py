"""Run one echo server until SIGTERM/SIGINT; the shutdown test drives it as a real process.

Prints `READY <port>` on stdout once serving; logs go to stderr.
"""

from __future__ import annotations

import asyncio
import logging
import sys

from posgate.runtime.server import run_until_signalled, start_server
from tests.integration.runtime.conftest import echo_spec, make_settings


async def main() -> None:
    settings = make_settings(dev_mode=True, auth_tokens=[])
    running = await start_server(echo_spec(), settings, port=0)
    print(f"READY {running.port}", flush=True)
    await run_until_signalled([running], grace=float(sys.argv[1]) if len(sys.argv) > 1 else 5.0)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s")
    asyncio.run(main())
