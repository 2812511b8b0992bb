"""Domain errors reach callers as mapped codes with rich details; other errors leak nothing."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf.wrappers_pb2 import StringValue
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from tests.integration.runtime.conftest import TOKEN_ONE, bearer, echo_spec, make_settings
from tests.integration.runtime.echo_service import SAY, SECRET_IN_ERROR, EchoClient


def _details(error: grpc.aio.AioRpcError):
    status = rpc_status.from_call(error)
    assert status is not None, "no google.rpc.Status in the trailers"
    unpacked = {}
    for detail in status.details:
        for message_type in (error_details_pb2.ErrorInfo, error_details_pb2.BadRequest):
            if detail.Is(message_type.DESCRIPTOR):
                message = message_type()
                detail.Unpack(message)
                unpacked[message_type] = message
    return status, unpacked


async def _say_error(client: EchoClient, text: str) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await client.say(StringValue(value=text), metadata=bearer(TOKEN_ONE))
    return raised.value


async def test_a_domain_error_becomes_its_status_with_error_info(serve, channel_to):
    client = EchoClient(channel_to(await serve(echo_spec(), make_settings())))
    error = await _say_error(client, "missing")
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert error.details() == "no such SKU"
    status, details = _details(error)
    assert status.code == grpc.StatusCode.NOT_FOUND.value[0]
    info = details[error_details_pb2.ErrorInfo]
    assert (info.reason, info.domain) == ("SKU_NOT_FOUND", "posgate")
    assert dict(info.metadata) == {"sku": "A1", "store": "S9"}


async def test_field_violations_travel_as_bad_request(serve, channel_to):
    client = EchoClient(channel_to(await serve(echo_spec(), make_settings())))
    error = await _say_error(client, "invalid")
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    _, details = _details(error)
    assert details[error_details_pb2.ErrorInfo].reason == "INVALID_ARGUMENT"
    violations = details[error_details_pb2.BadRequest].field_violations
    assert [(v.field, v.description) for v in violations] == [("lines[0].quantity", "must be positive")]


async def test_an_unexpected_exception_is_internal_and_leaks_nothing(serve, channel_to, caplog):
    client = EchoClient(channel_to(await serve(echo_spec(), make_settings())))
    caplog.set_level("INFO", logger="posgate")
    error = await _say_error(client, "boom")
    assert error.code() == grpc.StatusCode.INTERNAL
    assert "hunter2" not in (error.details() or "")
    assert "RuntimeError" not in (error.details() or "")
    assert all("hunter2" not in str(value) for _, value in error.trailing_metadata() or ())
    logged = [r for r in caplog.records if r.exc_info and SAY in r.getMessage()]
    assert logged, "the traceback must be logged on the server side"
    assert SECRET_IN_ERROR in str(logged[0].exc_info[1])


async def test_a_domain_error_in_a_server_stream_ends_it_with_details(serve, channel_to):
    client = EchoClient(channel_to(await serve(echo_spec(), make_settings())))
    call = client.count(StringValue(value="fail-at-2"), metadata=bearer(TOKEN_ONE))
    received = []
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        async for message in call:
            received.append(message.value)
    assert received == ["0", "1"]
    assert raised.value.code() == grpc.StatusCode.ABORTED
    _, details = _details(raised.value)
    assert details[error_details_pb2.ErrorInfo].reason == "VERSION_CONFLICT"


async def test_a_server_stream_succeeds(serve, channel_to):
    client = EchoClient(channel_to(await serve(echo_spec(), make_settings())))
    call = client.count(StringValue(value="ok"), metadata=bearer(TOKEN_ONE))
    assert [message.value async for message in call] == ["0", "1", "2"]
    assert await call.code() == grpc.StatusCode.OK
