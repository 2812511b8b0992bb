"""Correlation ids travel through the RPC and back; one log line per RPC, never a credential."""

from __future__ import annotations

import asyncio
import logging
import uuid

import grpc
import pytest
from google.protobuf.wrappers_pb2 import StringValue

from tests.integration.runtime.conftest import TOKEN_ONE, bearer, echo_spec, make_settings
from tests.integration.runtime.echo_service import SAY, EchoClient

CORRELATION_ID = "req-2b7e-4411"
WRONG_TOKEN = "wrong-token-9a9a"


def _trailer(metadata, key: str = "x-correlation-id") -> str | None:
    values = [value for item_key, value in metadata or () if item_key == key]
    assert len(values) <= 1
    return values[0] if values else None


def _rpc_records(caplog, method: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "posgate.rpc" and getattr(r, "rpc_method", None) == method]


async def _wait_for_records(caplog, method: str, count: int) -> list[logging.LogRecord]:
    """The server logs an aborted call after the client already saw the status: wait for it."""
    for _ in range(200):
        records = _rpc_records(caplog, method)
        if len(records) >= count:
            return records
        await asyncio.sleep(0.01)
    return _rpc_records(caplog, method)


async def test_the_callers_correlation_id_reaches_the_handler_and_comes_back(serve, channel_to):
    client = EchoClient(channel_to(await serve(echo_spec(), make_settings())))
    call = client.say(
        StringValue(value="correlation-id"),
        metadata=(*bearer(TOKEN_ONE), ("x-correlation-id", CORRELATION_ID)),
    )
    assert (await call).value == CORRELATION_ID
    assert _trailer(await call.trailing_metadata()) == CORRELATION_ID


async def test_a_correlation_id_is_generated_when_absent(serve, channel_to):
    client = EchoClient(channel_to(await serve(echo_spec(), make_settings())))
    call = client.say(StringValue(value="correlation-id"), metadata=bearer(TOKEN_ONE))
    seen_by_handler = (await call).value
    returned = _trailer(await call.trailing_metadata())
    assert returned == seen_by_handler
    assert uuid.UUID(returned).version == 4


async def test_an_unsafe_correlation_id_is_replaced(serve, channel_to):
    client = EchoClient(channel_to(await serve(echo_spec(), make_settings())))
    call = client.say(
        StringValue(value="correlation-id"), metadata=(*bearer(TOKEN_ONE), ("x-correlation-id", "a b" * 100))
    )
    assert uuid.UUID((await call).value).version == 4


async def test_errors_carry_the_correlation_id_too(serve, channel_to):
    client = EchoClient(channel_to(await serve(echo_spec(), make_settings())))
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await client.say(
            StringValue(value="missing"), metadata=(*bearer(TOKEN_ONE), ("x-correlation-id", CORRELATION_ID))
        )
    trailers = raised.value.trailing_metadata()
    assert _trailer(trailers) == CORRELATION_ID
    assert _trailer(trailers, "grpc-status-details-bin") is not None


async def test_one_log_line_per_rpc_with_method_code_and_correlation_id(serve, channel_to, caplog):
    caplog.set_level(logging.INFO, logger="posgate")
    client = EchoClient(channel_to(await serve(echo_spec(), make_settings())))
    await client.say(
        StringValue(value="hi"), metadata=(*bearer(TOKEN_ONE), ("x-correlation-id", CORRELATION_ID))
    )
    with pytest.raises(grpc.aio.AioRpcError):
        await client.say(StringValue(value="missing"), metadata=bearer(WRONG_TOKEN))

    ok, rejected = await _wait_for_records(caplog, SAY, 2)
    assert f"method={SAY}" in ok.getMessage()
    assert "code=OK" in ok.getMessage()
    assert f"correlation_id={CORRELATION_ID}" in ok.getMessage()
    assert "duration_ms=" in ok.getMessage()
    assert "peer=" in ok.getMessage()
    assert (ok.rpc_code, ok.correlation_id, ok.component) == ("OK", CORRELATION_ID, "echo")
    assert "code=UNAUTHENTICATED" in rejected.getMessage()
    for secret in (TOKEN_ONE, WRONG_TOKEN):
        assert secret not in caplog.text
        assert all(secret not in str(value) for record in caplog.records for value in vars(record).values())


async def test_server_streams_are_logged_once(serve, channel_to, caplog):
    caplog.set_level(logging.INFO, logger="posgate")
    client = EchoClient(channel_to(await serve(echo_spec(), make_settings())))
    call = client.count(StringValue(value="ok"), metadata=bearer(TOKEN_ONE))
    assert len([message async for message in call]) == 3
    (record,) = [r for r in caplog.records if getattr(r, "rpc_method", "").endswith("/Count")]
    assert record.rpc_code == "OK"
