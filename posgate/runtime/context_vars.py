"""Undoing a context variable's value, as the per-RPC scopes (caller, correlation id) do."""

from __future__ import annotations

from contextvars import ContextVar, Token
from typing import TypeVar

T = TypeVar("T")


def reset_quietly(variable: ContextVar[T], token: Token[T]) -> None:
    """Reset `variable` to before `token`; nothing to undo when the context is another one."""
    try:  # noqa: SIM105  # not suppress(): this runs on every RPC, a context manager costs more
        variable.reset(token)
    except ValueError:
        # An async generator may be finalised from another context (garbage collection of an
        # abandoned stream); the value then dies with its context, so nothing to undo.
        pass
