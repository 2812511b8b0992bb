"""The correlation id of the work in progress, carried across awaits by a context variable.

The gRPC interceptors set it per RPC; the outbox, consumers and log records read it. This
module imports nothing of grpc so that non-gRPC code can use it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar

METADATA_KEY = "x-correlation-id"

# Ids come from callers, so only short, plain tokens are trusted into logs and events;
# anything else (newlines, huge values) is replaced rather than echoed.
_ACCEPTABLE = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")

_current: ContextVar[str | None] = ContextVar("posgate_correlation_id", default=None)


def current_correlation_id() -> str | None:
    """Return the correlation id of the current RPC or message, or None outside of one."""
    return _current.get()


def new_correlation_id() -> str:
    """Return a fresh random correlation id."""
    return str(uuid.uuid4())


def accept_correlation_id(candidate: str | None) -> str:
    """Return the caller's id when it is a plain short token, otherwise a fresh one."""
    if candidate is not None and _ACCEPTABLE.match(candidate):
        return candidate
    return new_correlation_id()


@contextmanager
def correlation_scope(correlation_id: str) -> Iterator[str]:
    """Make `correlation_id` current inside the block (for consumers and background jobs).

    Args:
        correlation_id: The id to expose through `current_correlation_id`.

    Yields:
        The same id, for convenience.

    """
    token = _current.set(correlation_id)
    try:
        yield correlation_id
    finally:
        # An async generator may be finalised from another context (garbage collection of an
        # abandoned stream); the value then dies with its context, so nothing to undo.
        with suppress(ValueError):
            _current.reset(token)
