"""Requests the stream edge is still receiving: their bodies, bounded per request and per connection."""

from __future__ import annotations

from typing import TYPE_CHECKING

from posgate.errors import DomainError, ResourceExhausted
from posgate.runtime import edge_wire

if TYPE_CHECKING:
    from posgate.runtime.edge_calls import EdgeMethod


class Request:
    """A request being received: headers, path and method (None: not served), body so far, size limit."""

    __slots__ = ("body", "headers", "limit", "method", "path")

    def __init__(
        self, headers: list[edge_wire.Header], path: str, method: EdgeMethod | None, limit: int
    ) -> None:
        """A request whose headers arrived; `limit` is the largest message its method takes."""
        self.headers = headers
        self.path = path
        self.method = method
        self.limit = limit
        self.body = bytearray()


class Incoming:
    """One connection's unfinished requests, holding at most `buffer_limit` body bytes together.

    A request's body is kept until its stream ends (gRPC unary and server-streaming requests
    are one message). Without the shared bound, a client could hold the per-request limit on
    every one of a connection's concurrent streams.
    """

    def __init__(self, buffer_limit: int) -> None:
        """No requests yet."""
        self._requests: dict[int, Request] = {}
        self._buffer_limit = buffer_limit
        self._buffered = 0

    def open(self, stream_id: int, request: Request) -> None:
        """Start receiving `request` on `stream_id`."""
        self._requests[stream_id] = request

    def add(self, stream_id: int, data: bytes) -> DomainError | None:
        """Append `data` to the stream's body; on refusal the request is dropped and the reason returned."""
        request = self._requests.get(stream_id)
        if request is None:
            return None
        if self._buffered + len(data) > self._buffer_limit:
            self.take(stream_id)
            return ResourceExhausted("the connection holds too much request data", reason="CONNECTION_BUSY")
        request.body += data
        self._buffered += len(data)
        if len(request.body) > request.limit + edge_wire.PREFIX_SIZE:
            self.take(stream_id)
            return ResourceExhausted("the request is too large", reason="REQUEST_TOO_LARGE")
        return None

    def take(self, stream_id: int) -> Request | None:
        """The stream's request, no longer held (ended, refused or reset); None if there is none."""
        request = self._requests.pop(stream_id, None)
        if request is not None:
            self._buffered -= len(request.body)
        return request
