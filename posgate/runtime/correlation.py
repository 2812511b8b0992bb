"""The correlation id of the work in progress, carried across awaits by a context variable.

The gRPC interceptors set it per RPC; the outbox, consumers and log records read it. This
module imports nothing of grpc so that non-gRPC code can use it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token

from posgate.runtime.context_vars import reset_quietly

METADATA_KEY = "x-correlation-id"

# Ids come from callers, so only short, plain tokens are trusted into logs and events;
# anything else (newlines, huge values) is replaced rather than echoed.
_ACCEPTABLE = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")

_VARIANT_DIGITS = "89ab"

_current: ContextVar[str | None] = ContextVar("posgate_correlation_id", default=None)


def current_correlation_id() -> str | None:
    """Return the correlation id of the current RPC or message, or None outside of one."""
    return _current.get()


def new_correlation_id() -> str:
    """Return a fresh random correlation id: a UUID4 in its canonical text form."""
    # What str(uuid.uuid4()) returns, in half the time (every RPC without an id needs one):
    # version nibble 4, variant bits 10.
    digits = os.urandom(16).hex()
    variant = _VARIANT_DIGITS[int(digits[16], 16) & 3]
    return f"{digits[:8]}-{digits[8:12]}-4{digits[13:16]}-{variant}{digits[17:20]}-{digits[20:]}"


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
    token = enter_correlation(correlation_id)
    try:
        yield correlation_id
    finally:
        leave_correlation(token)


def enter_correlation(correlation_id: str) -> Token[str | None]:
    """Make `correlation_id` current until `leave_correlation` (the scope without a generator)."""
    return _current.set(correlation_id)


def leave_correlation(token: Token[str | None]) -> None:
    """Undo `enter_correlation`."""
    reset_quietly(_current, token)
