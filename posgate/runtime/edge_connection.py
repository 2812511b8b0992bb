"""One client connection to the stream edge: HTTP/2 framing (h2), calls, flow control, batching.

Writes are batched: a call's message goes into h2's buffer and the connection writes
everything buffered once per event-loop pass, so a change sent to every stream of a connection
costs one socket write, not one per stream. A message the peer's flow-control window cannot take
yet waits (its call with it), as does every call while the socket's buffer is full; the hub ends
a stream that falls too far behind, so a slow client cannot hold memory.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

import grpc
import h2.events
import h2.exceptions
import h2.settings
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes

from posgate.errors import DomainError, InvalidArgument, Unimplemented
from posgate.runtime import edge_wire
from posgate.runtime.edge_calls import CallGone, CallRequest, EdgeContext, Handed, serve_call
from posgate.runtime.edge_handed import HandedStreams
from posgate.runtime.edge_requests import Incoming, Request

if TYPE_CHECKING:
    from posgate.runtime.edge import StreamEdge


# h2's checks of every header were a fifth of a unary call's CPU. `_start_call` checks the headers
# the edge reads; the rest is metadata, which the caller policy and the correlation id check
# themselves. The edge sends only its own constant headers and encoded trailers.
_H2_CONFIG = H2Configuration(
    client_side=False,
    header_encoding=None,
    validate_inbound_headers=False,
    normalize_inbound_headers=False,
    validate_outbound_headers=False,
    normalize_outbound_headers=False,
)


class EdgeConnection(asyncio.Protocol):
    """The server side of one HTTP/2 connection carrying gRPC calls, unary and server-streaming."""

    def __init__(self, edge: StreamEdge) -> None:
        """A connection of `edge` (its methods, limits and open connections)."""
        self._edge = edge
        self._h2 = H2Connection(_H2_CONFIG)
        self._transport: asyncio.Transport | None = None
        self._peer = "unknown"
        self._auth: Mapping[str, Iterable[bytes]] = {}
        self._requests = Incoming(edge.buffer_limit)
        self._calls: dict[int, asyncio.Task[None]] = {}
        self._answered: set[int] = set()
        self._blocked: dict[int, asyncio.Future[None]] = {}
        self._handed = HandedStreams(self)
        self._out = bytearray()
        self._paused = False
        self._flush_scheduled = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Send our settings: how many calls a connection may hold open at once."""
        self._transport = transport  # type: ignore[assignment]  # a stream transport, from create_server
        self._peer, self._auth = self._edge.describe_peer(transport)
        self._h2.local_settings = h2.settings.Settings(
            client=False,
            initial_values={
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: self._edge.max_streams_per_connection,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: 16384,
            },
        )
        self._h2.initiate_connection()
        self._flush()
        self._edge.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        """End every call of the connection (their handlers unsubscribe)."""
        self._edge.connections.discard(self)
        self._transport = None
        for task in self._calls.values():
            task.cancel()
        self._handed.end_all()
        self._wake_all()

    def pause_writing(self) -> None:
        """The socket's buffer is full: calls wait before sending more."""
        self._paused = True

    def resume_writing(self) -> None:
        """The socket drained: waiting calls go on."""
        self._paused = False
        self._wake_all()

    def data_received(self, data: bytes) -> None:
        """Feed h2 and act on what it parsed."""
        try:
            events = self._h2.receive_data(data)
        except h2.exceptions.ProtocolError:
            self._flush()
            self.close()
            return
        for event in events:
            self._on_event(event)
        self._schedule_flush()

    async def send(self, stream_id: int, message: bytes) -> None:
        """Send one response message on `stream_id`, in frames the peer's windows allow."""
        data = edge_wire.frame(message)
        if stream_id not in self._answered:
            self._answered.add(stream_id)
            self._act(lambda: self._h2.send_headers(stream_id, edge_wire.RESPONSE_HEADERS))
        while data:
            if self._transport is None:
                raise CallGone
            size = min(self._h2.local_flow_control_window(stream_id), self._h2.max_outbound_frame_size)
            if size <= 0 or self._paused:
                # What is buffered must go out first: the peer grants window only for what it got.
                self._schedule_flush()
                await self._writable(stream_id)
                continue
            chunk, data = data[:size], data[size:]
            self._act(lambda: self._h2.send_data(stream_id, chunk))  # noqa: B023  # called at once
        self._schedule_flush()

    def finish(self, stream_id: int, trailers: list[edge_wire.Header]) -> None:
        """End `stream_id` with `trailers`, as a trailers-only response if nothing was sent."""
        block = trailers if stream_id in self._answered else [*edge_wire.RESPONSE_HEADERS, *trailers]
        self._answered.discard(stream_id)
        with contextlib.suppress(CallGone):
            self._act(lambda: self._h2.send_headers(stream_id, block, end_stream=True))
        self._schedule_flush()

    def hand_off(self, handed: Handed) -> None:
        """Push the live stream's messages from now on; it ends on failure, reset or deadline."""
        if self._transport is None:
            handed.handoff.detach()
            handed.log_end(grpc.StatusCode.CANCELLED)
            return
        self._handed.add(handed)

    @property
    def h2(self) -> H2Connection:
        """The connection's HTTP/2 state (for `HandedStreams`)."""
        return self._h2

    @property
    def writable(self) -> bool:
        """Whether the transport is open and its buffer not full."""
        return self._transport is not None and not self._paused

    def output(self, data: bytes) -> None:
        """Queue `data` for the socket after everything queued before, h2's frames included."""
        self._out += self._h2.data_to_send()
        self._out += data
        self._schedule_flush()

    def call_ended(self, stream_id: int) -> None:
        """A call ended; a drain may be waiting for the last one."""
        self._answered.discard(stream_id)
        self._edge.call_ended()

    def close(self, *, goaway: bool = False) -> None:
        """Close the connection, after a GOAWAY that tells the client to reconnect elsewhere."""
        if goaway and self._transport is not None:
            self._h2.close_connection(ErrorCodes.NO_ERROR)
            self._flush()
        if self._transport is not None:
            self._transport.close()

    def open_calls(self) -> int:
        """Calls still open on this connection, handed over or not."""
        return len(self._calls) + len(self._handed)

    def _act(self, action: Callable[[], object]) -> None:
        try:
            action()
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError) as error:
            raise CallGone from error

    def _on_event(self, event: object) -> None:
        if isinstance(event, h2.events.RequestReceived):
            headers = list(event.headers)
            path = (edge_wire.header_value(headers, b":path") or b"").decode("ascii", "replace")
            method = self._edge.methods.get(path)
            limit = self._edge.call_settings.limit_of(method)
            self._requests.open(event.stream_id, Request(headers, path, method, limit))
        elif isinstance(event, h2.events.DataReceived):
            self._h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            self._on_data(event.stream_id, event.data)
        elif isinstance(event, h2.events.StreamEnded):
            self._start_call(event.stream_id)
        elif isinstance(event, h2.events.StreamReset):
            self._reset(event.stream_id)
        elif isinstance(event, h2.events.WindowUpdated | h2.events.RemoteSettingsChanged):
            self._wake(getattr(event, "stream_id", 0))
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.close()

    def _on_data(self, stream_id: int, data: bytes) -> None:
        refusal = self._requests.add(stream_id, data)
        if refusal is not None:
            self._refuse(stream_id, refusal)

    def _start_call(self, stream_id: int) -> None:
        request = self._requests.take(stream_id)
        if request is None:
            return
        headers, path, method = request.headers, request.path, request.method
        try:
            if edge_wire.header_value(headers, b":method") != b"POST":
                raise InvalidArgument("gRPC calls are POST requests", reason="NOT_GRPC")
            if method is None:
                raise Unimplemented(f"method {path} is not served on this port", reason="METHOD_NOT_SERVED")
            content_type = edge_wire.header_value(headers, b"content-type") or b""
            if not content_type.startswith(b"application/grpc"):
                raise InvalidArgument("content-type must be application/grpc", reason="NOT_GRPC")
            deadline = edge_wire.parse_timeout(edge_wire.header_value(headers, b"grpc-timeout"))
        except DomainError as error:
            self._refuse(stream_id, error)
            return
        context = EdgeContext(edge_wire.call_metadata(headers), self._peer, self._auth)
        call = CallRequest(method, stream_id, bytes(request.body), deadline)
        serving = serve_call(self._edge.call_settings, call, context, self)
        task = asyncio.get_running_loop().create_task(serving)
        self._calls[stream_id] = task
        task.add_done_callback(lambda _task: self._call_done(stream_id))

    def _refuse(self, stream_id: int, error: DomainError) -> None:
        self.finish(stream_id, edge_wire.error_trailers(error))

    def _reset(self, stream_id: int) -> None:
        """The client reset the stream: end its call, running or handed over."""
        self._requests.take(stream_id)
        self._handed.end(stream_id, None)
        task = self._calls.get(stream_id)
        if task is not None:
            task.cancel()
        self._wake(stream_id)

    def _call_done(self, stream_id: int) -> None:
        """A call's task ended: answered, failed, cancelled or handed over."""
        self._calls.pop(stream_id, None)
        if stream_id not in self._handed:
            self._answered.discard(stream_id)
        self._edge.call_ended()

    async def _writable(self, stream_id: int) -> None:
        waiter = self._blocked.get(stream_id)
        if waiter is None:
            waiter = self._blocked[stream_id] = asyncio.get_running_loop().create_future()
        try:
            await waiter
        finally:
            if self._blocked.get(stream_id) is waiter:
                del self._blocked[stream_id]

    def _wake(self, stream_id: int) -> None:
        if stream_id == 0:
            self._wake_all()
            return
        waiter = self._blocked.get(stream_id)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        self._handed.wake(stream_id)

    def _wake_all(self) -> None:
        for waiter in self._blocked.values():
            if not waiter.done():
                waiter.set_result(None)
        self._handed.wake(0)

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled and self._transport is not None:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        self._out += self._h2.data_to_send()
        if self._out and self._transport is not None:
            self._transport.write(bytes(self._out))
        self._out.clear()
