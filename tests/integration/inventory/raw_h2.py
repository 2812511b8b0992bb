"""A raw HTTP/2 gRPC client (h2) that controls flow control itself, for the stream edge's wire tests.

A grpc.aio client opens its windows as it reads, so it cannot show what the edge does when a
client stops reading; this one only grants window when a test tells it to.
"""

from __future__ import annotations

import asyncio
import base64
import struct
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import h2.events
from google.rpc import error_details_pb2, status_pb2
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.settings import SettingCodes, Settings

from posgate.contracts import inventory
from tests.integration.inventory.conftest import INTERNAL_TOKEN

pb = inventory.pb
T, S = "t1", "s1"
WATCH_STOCK = b"/posgate.inventory.v1.InventoryService/WatchStock"
APPLY_MOVEMENTS = b"/posgate.inventory.v1.InventoryService/ApplyMovements"
WINDOW = 200
QUIET_S = 0.3  # how long a blocked stream must stay silent
WAIT_S = 8.0


def receipt(key: str, sku: str = "sku-1", delta: int = 1) -> inventory.pb.Movement:
    return pb.Movement(
        idempotency_key=key,
        key=pb.StockKey(tenant_id=T, store_id=S, sku=sku),
        type=pb.MOVEMENT_TYPE_RECEIPT,
        delta=delta,
    )


def grpc_body(message: bytes) -> bytes:
    return struct.pack(">BI", 0, len(message)) + message


def watch_body(*store_ids: str) -> bytes:
    return grpc_body(pb.WatchStockRequest(tenant_id=T, store_ids=list(store_ids)).SerializeToString())


def split_messages(data: bytes) -> tuple[list[bytes], int]:
    """The complete length-prefixed messages in `data`, and how many bytes they take."""
    messages, position = [], 0
    while len(data) - position >= 5:
        compressed, length = struct.unpack_from(">BI", data, position)
        assert compressed == 0
        if len(data) - position - 5 < length:
            break
        messages.append(data[position + 5 : position + 5 + length])
        position += 5 + length
    return messages, position


@dataclass
class Stream:
    headers: list[tuple[bytes, bytes]] | None = None
    headers_ended: bool = False  # END_STREAM on the response HEADERS: a trailers-only response
    trailers: list[tuple[bytes, bytes]] | None = None
    data: bytearray = field(default_factory=bytearray)
    data_frames: int = 0
    ended: bool = False
    reset: bool = False

    def responses(self) -> list[inventory.pb.WatchStockResponse]:
        messages, _ = split_messages(bytes(self.data))
        return [pb.WatchStockResponse.FromString(message) for message in messages]

    def status(self) -> dict[bytes, bytes]:
        block = self.trailers if self.trailers is not None else self.headers
        assert block is not None
        return dict(block)


class RawClient:
    """An HTTP/2 client on asyncio streams; it never opens a window unless asked to."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.h2 = H2Connection(config=H2Configuration(client_side=True, header_encoding=None))
        self.streams: dict[int, Stream] = {}
        self.error: BaseException | None = None
        self.closed = False
        self._reader = reader
        self._writer = writer
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self, window: int) -> None:
        self.h2.local_settings = Settings(
            client=True,
            initial_values={SettingCodes.INITIAL_WINDOW_SIZE: window, SettingCodes.ENABLE_PUSH: 0},
        )
        self.h2.initiate_connection()
        self.flush()
        self._task = asyncio.create_task(self._read())

    def flush(self) -> None:
        self._writer.write(self.h2.data_to_send())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._writer.close()
        await asyncio.gather(self._writer.wait_closed(), return_exceptions=True)

    def call(
        self,
        body: bytes,
        *,
        path: bytes = WATCH_STOCK,
        content_type: bytes = b"application/grpc",
        end_stream: bool = True,
        method: bytes = b"POST",
    ) -> int:
        stream_id = self.h2.get_next_available_stream_id()
        headers = [
            (b":method", method),
            (b":scheme", b"http"),
            (b":path", path),
            (b":authority", b"127.0.0.1"),
            (b"content-type", content_type),
            (b"te", b"trailers"),
            (b"authorization", f"Bearer {INTERNAL_TOKEN}".encode()),
        ]
        self.streams[stream_id] = Stream()
        self.h2.send_headers(stream_id, headers)
        if body:
            self.h2.send_data(stream_id, body, end_stream=end_stream)
        elif end_stream:
            self.h2.end_stream(stream_id)
        self.flush()
        return stream_id

    async def send_body(self, stream_id: int, body: bytes, *, end: bool = True) -> None:
        """Send `body` as the peer's windows allow, then end the stream (unless it ended first)."""
        while body and not self.streams[stream_id].ended:
            size = min(
                self.h2.local_flow_control_window(stream_id), self.h2.max_outbound_frame_size, len(body)
            )
            if size == 0:
                await self.until(
                    lambda: self.h2.local_flow_control_window(stream_id) > 0 or self.streams[stream_id].ended
                )
                continue
            chunk, body = body[:size], body[size:]
            self.h2.send_data(stream_id, chunk)
            self.flush()
        if end and not self.streams[stream_id].ended:
            self.h2.end_stream(stream_id)
            self.flush()

    def grant(self, stream_id: int, increment: int) -> None:
        """Open the stream's window, and the connection's by as much."""
        self.h2.increment_flow_control_window(increment, stream_id=stream_id)
        self.h2.increment_flow_control_window(increment)
        self.flush()

    def reset(self, stream_id: int) -> None:
        self.h2.reset_stream(stream_id, ErrorCodes.CANCEL)
        self.flush()

    async def until(self, condition: Callable[[], bool]) -> None:
        async def wait() -> None:
            while not condition():
                if self.error is not None:
                    raise AssertionError("the connection failed") from self.error
                if self.closed:
                    raise AssertionError("the server closed the connection")
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(wait(), WAIT_S)

    async def _read(self) -> None:
        try:
            while data := await self._reader.read(65536):
                for event in self.h2.receive_data(data):
                    self._on(event)
                self.flush()
                self._changed.set()
        except Exception as error:  # reported by `until`
            self.error = error
        self.closed = True
        self._changed.set()

    def _on(self, event: h2.events.Event) -> None:
        stream = self.streams.get(getattr(event, "stream_id", 0) or 0)
        if stream is None:
            return
        if isinstance(event, h2.events.ResponseReceived):
            stream.headers = list(event.headers)
            stream.headers_ended = event.stream_ended is not None
        elif isinstance(event, h2.events.DataReceived):
            stream.data += event.data
            stream.data_frames += 1
        elif isinstance(event, h2.events.TrailersReceived):
            stream.trailers = list(event.headers)
        elif isinstance(event, h2.events.StreamEnded):
            stream.ended = True
        elif isinstance(event, h2.events.StreamReset):
            stream.reset = True


@asynccontextmanager
async def raw_client(port: int, window: int = 65535) -> AsyncIterator[RawClient]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    client = RawClient(reader, writer)
    client.start(window)
    try:
        yield client
    finally:
        await client.stop()


def snapshot_done(stream: Stream) -> bool:
    return any(response.snapshot.complete for response in stream.responses())


def filled_or_done(stream: Stream, size: int) -> bool:
    return len(stream.data) == size or snapshot_done(stream)


def error_reason(stream: Stream) -> str:
    return error_reason_of(stream.status())


def error_reason_of(trailers: dict[bytes, bytes]) -> str:
    details = trailers[b"grpc-status-details-bin"]
    status = status_pb2.Status.FromString(base64.b64decode(details + b"=" * (-len(details) % 4)))
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    return str(info.reason)
