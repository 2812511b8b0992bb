"""The dispatcher's gap between hand-over rounds: the busier a round, the later the next.

After a round that sent n handed-over commands, the next begins no sooner than
min(n * `per_command`, `most`) seconds after it began, unless `end()` is called (a full batch
is waiting, or the dispatcher stops). Each round costs a gRPC call that wakes the service and
the gateway's own loop, whatever its size. At 3,300 webhooks/s, with 1 ms per command and at
most 4 ms, rounds of about 7 commands (480 a second) settle at the cap, about 13 each, and the
gateway, the echo service and the machine spent about 6%, 40% and 8% less CPU per webhook
(docs/benchmark-history.md; the round sizes follow from the rate, they were not counted). At
500/s rounds of one command come about 2 ms apart and the 1 ms gap never delays one.
"""

from __future__ import annotations

import asyncio
import time


class RoundGap:
    """When the next hand-over round may begin; `wait()` until then."""

    def __init__(self, per_command: float, most: float) -> None:
        """A gap of `per_command` seconds per command the last round sent, at most `most`."""
        self._per_command = per_command
        self._most = most
        self._began = 0.0
        self._sent = 0
        self._over: asyncio.Future[None] | None = None

    def round_began(self, began: float, sent: int) -> None:
        """A round began at `began` (`time.monotonic()`) and sends `sent` handed-over commands."""
        self._began = began
        self._sent = sent

    async def wait(self) -> None:
        """Until the gap after the last round has passed, or `end()`."""
        wait = self._began + min(self._sent * self._per_command, self._most) - time.monotonic()
        if wait <= 0:
            return
        # A future and a timer, as `asyncio.sleep` has, that `end()` can also settle: `wait_for`
        # on an event cost a task and a cancellation per gap, about half the CPU saved.
        loop = asyncio.get_running_loop()
        self._over = loop.create_future()
        timer = loop.call_later(wait, self.end)
        try:
            await self._over
        finally:
            timer.cancel()
            self._over = None

    def end(self) -> None:
        """End the gap now, if one lasts."""
        if self._over is not None and not self._over.done():
            self._over.set_result(None)
