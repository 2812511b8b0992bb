"""Background work that runs every few seconds in its own task until stopped (any component)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod

log = logging.getLogger(__name__)


class Periodic(ABC):
    """Runs `sweep()` every `interval_s` seconds; a failed sweep is logged and the next runs as usual."""

    name = "periodic"

    def __init__(self, interval_s: float) -> None:
        """Sweep every `interval_s` seconds once started."""
        self._interval_s = interval_s
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def stopping(self) -> bool:
        """Whether `stop()` was called (long sweeps check it between steps)."""
        return self._stopping.is_set()

    @abstractmethod
    async def sweep(self) -> None:
        """One round of the work."""

    async def run(self) -> None:
        """Sweep until `stop()`."""
        while not self._stopping.is_set():
            try:
                await self.sweep()
            except Exception:
                log.exception("%s failed; retrying in %.1fs", self.name, self._interval_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self._interval_s)

    def start(self) -> None:
        """Run in a background task of the running loop."""
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name=self.name)

    async def stop(self) -> None:
        """Stop after the sweep in progress; waits for the background task when there is one."""
        self._stopping.set()
        if self._task is not None:
            await self._task
            self._task = None
