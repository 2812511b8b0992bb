"""The stream edge on the wire, driven by a raw HTTP/2 client that grants window only when told (`raw_h2`).

What a grpc.aio client cannot show: a stream whose client stops reading, bad requests answered
with trailers only, a connection's bound on unfinished requests, a reset stream.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import AsyncIterator
from functools import partial

import pytest

from posgate.contracts import inventory
from tests.integration.inventory.conftest import InventoryServer, start_inventory
from tests.integration.inventory.raw_h2 import (
    APPLY_MOVEMENTS,
    QUIET_S,
    WINDOW,
    RawClient,
    S,
    error_reason,
    error_reason_of,
    filled_or_done,
    grpc_body,
    raw_client,
    receipt,
    snapshot_done,
    split_messages,
    watch_body,
)

pb = inventory.pb


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
