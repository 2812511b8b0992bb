"""Outcomes of sends the dispatcher has yet to record, written together every few milliseconds.

Recording a round's outcomes is a transaction of its own (a durable commit). At a few hundred
hand-over rounds a second, one commit per round was a good part of the gateway's work; gathered
for `spacing` seconds, the rounds of a busy second share a few commits. Nothing depends on the
record being prompt: a command stays leased to this process until its outcome is recorded, and
if the process dies first, the lease ends and another dispatcher sends it again, which the
services' idempotency keys turn into a no-op.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from posgate.gateway.claims import Claimed

Record = Callable[[Sequence[Claimed], Sequence[Exception | None]], Coroutine[Any, Any, None]]
"""Writes the outcomes of `claimed` (one per command) in one transaction."""


class OutcomeLog:
    """Outcomes waiting for `record`, and the one write of them in flight, if any."""

    def __init__(self, record: Record, *, spacing: float = 0.05) -> None:
        """Write what waits once its oldest outcome is `spacing` seconds old."""
        self._record = record
        self._spacing = spacing
        self._claimed: list[Claimed] = []
        self._outcomes: list[Exception | None] = []
        self._oldest = 0.0
        self._writing: asyncio.Task[None] | None = None

    def add(self, claimed: Sequence[Claimed], outcomes: Sequence[Exception | None]) -> None:
        """Keep one round's outcomes for the next write."""
        if not self._claimed:
            self._oldest = time.monotonic()
        self._claimed.extend(claimed)
        self._outcomes.extend(outcomes)

    def due_in(self) -> float | None:
        """Seconds until the next write is due, or None when nothing waits."""
        if not self._claimed:
            return None
        return self._oldest + self._spacing - time.monotonic()

    async def write_due(self) -> None:
        """Start writing what waits if it is due; a failure of the previous write is raised.

        The write runs behind the dispatcher's next sends; at most one is in flight.
        """
        due = self.due_in()
        if due is None or due > 0:
            return
        await self._written()
        claimed, outcomes = self._claimed, self._outcomes
        self._claimed, self._outcomes = [], []
        self._writing = asyncio.create_task(self._record(claimed, outcomes))

    async def flush(self) -> None:
        """Write everything that waits now, and wait until it is written."""
        try:
            await self._written()
        finally:
            if self._claimed:
                claimed, outcomes = self._claimed, self._outcomes
                self._claimed, self._outcomes = [], []
                await self._record(claimed, outcomes)

    async def _written(self) -> None:
        writing, self._writing = self._writing, None
        if writing is not None:
            await writing
