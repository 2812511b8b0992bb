"""The handed-over streams of one edge connection: pushed messages, flow control, their ends.

A change sent to 10,000 live streams is 10,000 pushes in one pass of the event loop, so a push
is kept to what HTTP/2 requires: one DATA frame written straight into the connection's output,
with the peer's flow-control windows kept in h2's own accounting. Frames go out in the order
they were made (`EdgeConnection.output`), before or after h2's own frames.
"""

from __future__ import annotations

import asyncio
from functools import partial
from typing import TYPE_CHECKING, Protocol

import grpc
from h2.connection import H2Connection

from posgate.errors import DomainError
from posgate.runtime import edge_wire
from posgate.runtime.status import status_code_for

if TYPE_CHECKING:
    from posgate.runtime.edge_calls import Handed

# Ends a handed-over stream whose client deadline passed.
_DEADLINE = DomainError("deadline exceeded", reason="DEADLINE_EXCEEDED")


class Connection(Protocol):
    """What the handed-over streams need of their connection."""

    @property
    def h2(self) -> H2Connection:
        """The connection's HTTP/2 state."""

    @property
    def writable(self) -> bool:
        """Whether the transport is open and its buffer not full."""

    def output(self, data: bytes) -> None:
        """Queue bytes for the socket after everything queued or made by h2 before."""

    def finish(self, stream_id: int, trailers: list[edge_wire.Header]) -> None:
        """End a stream with its trailers."""

    def call_ended(self, stream_id: int) -> None:
        """A call of the connection ended (for drains waiting on the last one)."""


class HandedStreams:
    """Streams whose handlers handed them over (`Handoff`): pushed to, resumed, ended."""

    def __init__(self, connection: Connection) -> None:
        """The handed-over streams of `connection`."""
        self._connection = connection
        self._handed: dict[int, Handed] = {}
        self._deadlines: dict[int, asyncio.TimerHandle] = {}
        self._wanting: set[int] = set()

    def __len__(self) -> int:
        """How many are open."""
        return len(self._handed)

    def __contains__(self, stream_id: int) -> bool:
        """Whether `stream_id` is handed over and open."""
        return stream_id in self._handed

    def add(self, handed: Handed) -> None:
        """Push the live stream's messages from now on; it ends on failure, reset or deadline."""
        stream_id = handed.stream_id
        self._handed[stream_id] = handed
        if handed.deadline_s is not None:
            expire = partial(self.end, stream_id, _DEADLINE)
            self._deadlines[stream_id] = asyncio.get_running_loop().call_later(handed.deadline_s, expire)
        handed.handoff.attach(partial(self._push, stream_id), partial(self._end_soon, stream_id))

    def end(self, stream_id: int, error: DomainError | None) -> None:
        """End a stream: with `error`'s trailers, or quietly (None: the client reset or left)."""
        handed = self._handed.pop(stream_id, None)
        if handed is None:
            return
        self._wanting.discard(stream_id)
        timer = self._deadlines.pop(stream_id, None)
        if timer is not None:
            timer.cancel()
        handed.handoff.detach()
        if error is None:
            handed.log_end(grpc.StatusCode.CANCELLED)
        elif error is _DEADLINE:
            expired = edge_wire.trailers(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline exceeded")
            self._connection.finish(stream_id, expired)
            handed.log_end(grpc.StatusCode.DEADLINE_EXCEEDED)
        else:
            self._connection.finish(
                stream_id, edge_wire.error_trailers(error, handed.context.trailing_metadata())
            )
            handed.log_end(status_code_for(error))
        self._connection.call_ended(stream_id)

    def end_all(self) -> None:
        """The connection is gone: end every stream quietly."""
        for stream_id in list(self._handed):
            self.end(stream_id, None)

    def wake(self, stream_id: int) -> None:
        """A window opened: `stream_id`'s, or every stream's (0, or the socket drained)."""
        if stream_id == 0:
            for waiting in list(self._wanting):
                self._resume(waiting)
        elif stream_id in self._wanting:
            self._resume(stream_id)

    def _resume(self, stream_id: int) -> None:
        self._wanting.discard(stream_id)
        handed = self._handed.get(stream_id)
        if handed is not None and self._connection.writable:
            handed.handoff.resume()

    def _end_soon(self, stream_id: int, error: DomainError) -> None:
        # Called from inside the hub's fan-out: leave its loop before unsubscribing.
        asyncio.get_running_loop().call_soon(self.end, stream_id, error)

    def _push(self, stream_id: int, message: bytes) -> bool:
        """Send one message now, whole, or answer False: it waits for `wake`."""
        h2 = self._connection.h2
        stream = h2.streams.get(stream_id)
        if stream is None or stream.closed:
            return True  # reset: the reset ends the call
        length = edge_wire.PREFIX_SIZE + len(message)
        window = min(h2.outbound_flow_control_window, stream.outbound_flow_control_window)
        if not self._connection.writable or window < length:
            self._wanting.add(stream_id)
            return False
        self._connection.output(edge_wire.data_frames(stream_id, message, h2.max_outbound_frame_size))
        stream.outbound_flow_control_window -= length
        h2.outbound_flow_control_window -= length
        return True
