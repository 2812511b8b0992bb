"""One RPC in progress: its correlation id and caller, made current for its handler, and its timer.

Plain functions and a slotted record rather than context managers: they run on every RPC.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextvars import Token
from typing import TYPE_CHECKING, Any

import grpc

from posgate.runtime import correlation
from posgate.runtime.caller import Caller, current_caller, enter_caller, leave_caller

if TYPE_CHECKING:
    Context = grpc.aio.ServicerContext[Any, Any]

Metadata = Sequence[tuple[str, str | bytes]]

# Logged as the caller of an RPC whose credentials were checked and refused.
NO_CALLER = "-"


def metadata_value(metadata: Metadata | None, key: str) -> str | None:
    """Return the first text value of `key` in invocation metadata, or None."""
    for item_key, value in metadata or ():
        if item_key == key and isinstance(value, str):
            return value
    return None


class RpcCall:
    """What the interceptor knows about one RPC, for its handler and its log line.

    Attributes:
        metadata: The invocation metadata (values are never logged: they carry credentials).
        correlation_id: The caller's id when acceptable, otherwise a generated one.
        caller: The caller's name for the log line (`-` once its credentials were refused).
        started: `time.perf_counter()` when the RPC reached the interceptor.
        peer: The client's address, read when the RPC began.

    """

    __slots__ = (
        "_caller_token",
        "_correlation_token",
        "caller",
        "correlation_id",
        "metadata",
        "peer",
        "started",
    )

    def __init__(self, metadata: Metadata | None, correlation_id: str, peer: str) -> None:
        """Start timing an RPC from `peer` with `correlation_id` and make the id current."""
        self.started = time.perf_counter()
        self.metadata = metadata
        self.peer = peer
        self.correlation_id = correlation_id
        # Without authentication (dev mode, health) the default caller stands.
        self.caller = current_caller().name
        self._correlation_token = correlation.enter_correlation(correlation_id)
        self._caller_token: Token[Caller | None] | None = None

    def run_as(self, caller: Caller) -> None:
        """Make the authenticated `caller` current for the rest of the RPC and log its name."""
        self.caller = caller.name
        self._caller_token = enter_caller(caller)

    def succeeded(self, context: Context) -> grpc.StatusCode:
        """Return the RPC's code after its handler returned; the correlation trailer stays set."""
        # A handler that set its own trailers replaced ours.
        with_correlation_trailer(context, self.correlation_id)
        return context.code() or grpc.StatusCode.OK

    def end(self) -> None:
        """Undo what the RPC made current (it may end in another context: see `leave_caller`)."""
        if self._caller_token is not None:
            leave_caller(self._caller_token)
        correlation.leave_correlation(self._correlation_token)


def begin_call(context: Context, metadata: Metadata | None) -> RpcCall:
    """Start an RPC: accept or generate its correlation id, make it current, set it as a trailer."""
    correlation_id = correlation.accept_correlation_id(metadata_value(metadata, correlation.METADATA_KEY))
    # Read now, while the call is surely alive: a grpc.aio call cancelled by a server stopping
    # may be freed in C before its handler's `finally` logs it, and `peer()` then crashed the
    # process (SIGSEGV in a CI run).
    rpc = RpcCall(metadata, correlation_id, context.peer())
    # Set before the handler runs, so that an abort without trailers still carries it.
    with_correlation_trailer(context, correlation_id)
    return rpc


def with_correlation_trailer(context: Context, correlation_id: str) -> None:
    """Add the `x-correlation-id` trailer unless the trailers already carry one."""
    trailers = tuple(context.trailing_metadata() or ())
    if not any(key == correlation.METADATA_KEY for key, _ in trailers):
        context.set_trailing_metadata((*trailers, (correlation.METADATA_KEY, correlation_id)))
