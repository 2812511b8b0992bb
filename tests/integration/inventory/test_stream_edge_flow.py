"""The stream edge on the wire: a raw HTTP/2 client (h2) that controls flow control itself.

A grpc.aio client opens its windows as it reads, so it cannot show what the edge does when a
client stops reading; this one only grants window when a test tells it to.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import struct
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial

import h2.events
import pytest
from google.rpc import error_details_pb2, status_pb2
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.settings import SettingCodes, Settings

from posgate.contracts import inventory
from tests.integration.inventory.conftest import INTERNAL_TOKEN, InventoryServer, start_inventory

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


async def edge(database_url: str) -> AsyncIterator[InventoryServer]:
    async for server in start_inventory(database_url, inventory_stream_port=0):
        assert server.stream_port > 0
        yield server


@pytest.fixture
async def edge_server(database_url: str) -> AsyncIterator[InventoryServer]:
    """On SQLite and PostgreSQL."""
    async for server in edge(database_url):
        yield server


@pytest.fixture
async def sqlite_edge_server(sqlite_url: str) -> AsyncIterator[InventoryServer]:
    async for server in edge(sqlite_url):
        yield server


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


async def test_a_stream_waits_for_window_then_gets_every_change_in_order(
    edge_server: InventoryServer,
) -> None:
    # A snapshot larger than the window: it must arrive in window-sized parts.
    await edge_server.client.apply_movements(
        [receipt(f"seed-{n}", sku=f"seed-sku-{n:02d}") for n in range(10)]
    )
    async with raw_client(edge_server.stream_port, WINDOW) as client:
        stream_id = client.call(watch_body(S))
        stream = client.streams[stream_id]
        await client.until(lambda: len(stream.data) >= WINDOW)
        await asyncio.sleep(QUIET_S)
        assert len(stream.data) == WINDOW, "the snapshot went past the stream's window"
        assert stream.headers is not None
        assert dict(stream.headers)[b":status"] == b"200"

        acknowledged = 0
        while not snapshot_done(stream):
            # Acknowledge what arrived, as a reading client would, then wait for that much more.
            client.grant(stream_id, len(stream.data) - acknowledged)
            acknowledged = len(stream.data)
            await client.until(partial(filled_or_done, stream, WINDOW + acknowledged))
        granted = WINDOW + acknowledged
        (snapshot,) = stream.responses()
        assert sorted(level.key.sku for level in snapshot.snapshot.levels) == [
            f"seed-sku-{n:02d}" for n in range(10)
        ]
        assert dict(snapshot.snapshot.store_sequences) == {S: 10}
        assert stream.data_frames > 1

        snapshot_size = len(stream.data)
        window = granted - snapshot_size
        await edge_server.client.apply_movements(
            [receipt(f"live-{n}", sku=f"live-{n:02d}") for n in range(50)]
        )
        await asyncio.sleep(QUIET_S)
        blocked = len(stream.data) - snapshot_size
        assert 0 < blocked <= window, "the changes that fit the window, and no more, went out"
        assert not stream.ended

        client.grant(stream_id, 1 << 20)
        await client.until(lambda: len(stream.responses()) == 51)
        await asyncio.sleep(QUIET_S)
        responses = stream.responses()
        assert len(responses) == 51, "a change came twice"
        changes = [response.change for response in responses[1:]]
        assert all(response.HasField("change") for response in responses[1:])
        assert [change.level.sequence for change in changes] == list(range(11, 61))
        assert [change.level.key.sku for change in changes] == [f"live-{n:02d}" for n in range(50)]
        assert [(change.delta, change.level.on_hand) for change in changes] == [(1, 1)] * 50
        assert split_messages(bytes(stream.data))[1] == len(stream.data), "a message arrived cut short"
        assert not stream.ended


async def test_a_stream_that_never_opens_its_window_ends_too_slow(edge_server: InventoryServer) -> None:
    async with raw_client(edge_server.stream_port, WINDOW) as client:
        stream_id = client.call(watch_body(S))
        stream = client.streams[stream_id]
        await client.until(lambda: snapshot_done(stream))
        for start in (0, 500):
            await edge_server.client.apply_movements(
                [receipt(f"flood-{n}", sku=f"sku-{n % 7}") for n in range(start, start + 500)]
            )
        await asyncio.sleep(QUIET_S)
        assert not stream.ended, "the stream ended before its queue was full"
        await edge_server.client.apply_movements([receipt(f"flood-{n}") for n in range(1000, 1100)])
        await client.until(lambda: stream.ended)
        assert not stream.reset
        assert stream.trailers is not None, "the stream ended without trailers"
        assert stream.status()[b"grpc-status"] == b"8"
        assert error_reason(stream) == "STREAM_TOO_SLOW"
        assert len(stream.data) <= WINDOW
        # Whole messages only: the changes it got before stalling are the first ones, in order.
        changes = [response.change.level.sequence for response in stream.responses()[1:]]
        assert changes == list(range(1, len(changes) + 1))


async def trailers_only(client: RawClient, stream_id: int) -> dict[bytes, bytes]:
    stream = client.streams[stream_id]
    await client.until(lambda: stream.ended)
    assert stream.headers_ended, "not a trailers-only response"
    assert stream.trailers is None
    assert stream.data_frames == 0
    assert not stream.reset
    return stream.status()


async def test_bad_requests_get_trailers_only_responses(sqlite_edge_server: InventoryServer) -> None:
    async with raw_client(sqlite_edge_server.stream_port) as client:
        json = client.call(watch_body(S), content_type=b"application/json")
        get = client.call(watch_body(S), method=b"GET")
        unknown = client.call(watch_body(S), path=b"/posgate.inventory.v1.InventoryService/Nothing")
        truncated = client.call(struct.pack(">BI", 0, 100) + b"abc")
        too_large = client.call(b"", end_stream=False)
        await client.send_body(too_large, grpc_body(b"x" * (64 * 1024 + 1)))
        # A unary method takes what the gRPC port takes (4 MiB), a stream's request 64 KiB.
        too_large_unary = client.call(b"", path=APPLY_MOVEMENTS, end_stream=False)
        await client.send_body(too_large_unary, grpc_body(b"x" * (4 * 1024 * 1024 + 1)))

        for stream_id, code, reason in [
            (json, b"3", "NOT_GRPC"),
            (get, b"3", "NOT_GRPC"),
            (unknown, b"12", "METHOD_NOT_SERVED"),
            (truncated, b"3", "MALFORMED_REQUEST"),
            (too_large, b"8", "REQUEST_TOO_LARGE"),
            (too_large_unary, b"8", "REQUEST_TOO_LARGE"),
        ]:
            status = await trailers_only(client, stream_id)
            assert status[b":status"] == b"200"
            assert status[b"content-type"] == b"application/grpc"
            assert status[b"grpc-status"] == code
            assert error_reason(client.streams[stream_id]) == reason

        # The connection is still good for a proper call.
        good = client.call(watch_body(S))
        await client.until(lambda: snapshot_done(client.streams[good]))


async def test_a_connection_holds_a_bounded_amount_of_unfinished_requests(
    sqlite_edge_server: InventoryServer,
) -> None:
    # 3.5 MiB that is no protobuf message (a varint that never ends): one unary request may hold it.
    part = grpc_body(b"\xff" * (3 * 1024 * 1024 + 512 * 1024))
    async with raw_client(sqlite_edge_server.stream_port) as client:
        held = [client.call(b"", path=APPLY_MOVEMENTS, end_stream=False) for _ in range(5)]
        for stream_id in held:
            await client.send_body(stream_id, part, end=False)
        # 16 MiB per connection: the fifth request's body does not fit beside the other four.
        status = await trailers_only(client, held[4])
        assert status[b"grpc-status"] == b"8"
        assert error_reason(client.streams[held[4]]) == "CONNECTION_BUSY"
        # The four others were kept whole: they end as calls (their bytes are not a request
        # message), and what they held is free again for the next request.
        for stream_id in held[:4]:
            client.h2.end_stream(stream_id)
            client.flush()
            assert error_reason_of(await trailers_only(client, stream_id)) == "MALFORMED_REQUEST"
        again = client.call(b"", path=APPLY_MOVEMENTS, end_stream=False)
        await client.send_body(again, part)
        assert error_reason_of(await trailers_only(client, again)) == "MALFORMED_REQUEST"


async def test_a_reset_stream_ends_alone_and_is_logged_cancelled(
    sqlite_edge_server: InventoryServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="posgate.rpc")

    def cancelled() -> list[str]:
        return [r.getMessage() for r in caplog.records if "WatchStock code=CANCELLED" in r.getMessage()]

    async with raw_client(sqlite_edge_server.stream_port) as client:
        leaving, staying = client.call(watch_body(S)), client.call(watch_body(S))
        await client.until(
            lambda: snapshot_done(client.streams[leaving]) and snapshot_done(client.streams[staying])
        )
        await sqlite_edge_server.client.apply_movements([receipt("before")])
        await client.until(lambda: len(client.streams[leaving].responses()) == 2)
        assert cancelled() == []

        client.reset(leaving)
        for _ in range(100):
            if cancelled():
                break
            await asyncio.sleep(0.05)
        await sqlite_edge_server.client.apply_movements([receipt(f"after-{n}") for n in range(3)])
        await client.until(lambda: len(client.streams[staying].responses()) == 5)
        changes = [response.change.level.sequence for response in client.streams[staying].responses()[1:]]
        assert changes == [1, 2, 3, 4]
        assert not client.closed

        (line,) = cancelled()
        assert "caller=token#1" in line
        assert "peer=ipv4:127.0.0.1:" in line
