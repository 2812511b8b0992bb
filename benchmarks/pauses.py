"""Keeping the load generator's own garbage collector out of what it measures.

The load generators are Python, in the benchmark's own process. A full collection of their heap
(tens of thousands of request tasks and results, or 10,000 open streams) paused that process for
50-140 ms in the middle of a measured phase: every request due meanwhile went out late and every
change that arrived meanwhile was stamped late, so the p99 measured the generator, not the
server. During a measured window automatic collection is off; reference counting still frees
what each request leaves behind, and the cycles wait for the end of the window.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

_depth = 0


@contextmanager
def collector_paused() -> Iterator[None]:
    """No automatic garbage collection in this process until the outermost window ends."""
    global _depth  # noqa: PLW0603  # one process-wide collector, one count of who paused it
    if _depth == 0:
        gc.collect()
        gc.freeze()  # what exists now is never scanned while paused
        gc.disable()
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0:
            gc.unfreeze()
            gc.enable()
