"""Scoped tokens reach handlers as callers that may act only for their tenants, over real gRPC."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from google.protobuf.wrappers_pb2 import StringValue
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from pydantic import SecretStr

from posgate.runtime.auth import ServerConfigurationError
from posgate.runtime.caller import current_caller, require_tenant
from posgate.runtime.server import start_server
from tests.integration.runtime.certificates import make_certificates
from tests.integration.runtime.conftest import TOKEN_ONE, bearer, echo_spec, make_settings
from tests.integration.runtime.echo_service import SAY, EchoClient, EchoServicer

KIOSK_TOKEN = "kiosk-token-51ab7c"
KIOSK_TOKEN_NEXT = "kiosk-token-next-e2c0d9"
# TOKEN_ONE is token#1 (every tenant); the kiosk's two secrets are token#2 and token#3 (t1 only).
SCOPED_TOKENS = [SecretStr(TOKEN_ONE), SecretStr(f"{KIOSK_TOKEN}@t1"), SecretStr(f"{KIOSK_TOKEN_NEXT}@t1")]


class TenantEchoServicer(EchoServicer):
    """Say `tenant:<id>` checks the tenant and answers the caller's name; Count does it per message."""

    async def Say(self, request: StringValue, context: Any) -> StringValue:
        if not request.value.startswith("tenant:"):
            return await super().Say(request, context)
        # After a suspension, as a real handler would be after a database round trip.
        await asyncio.sleep(0.01)
        require_tenant(request.value.removeprefix("tenant:"))
        return StringValue(value=current_caller().name)

    async def Count(self, request: StringValue, context: Any) -> AsyncIterator[StringValue]:
        for tenant in request.value.split(","):
            await asyncio.sleep(0)
            require_tenant(tenant)
            yield StringValue(value=f"{tenant}:{current_caller().name}")


@pytest.fixture
async def client(serve, channel_to) -> EchoClient:
    running = await serve(echo_spec(TenantEchoServicer()), make_settings(auth_tokens=SCOPED_TOKENS))
    return EchoClient(channel_to(running))


def _error_info(error: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo:
    info = error_details_pb2.ErrorInfo()
    rpc_status.from_call(error).details[0].Unpack(info)
    return info


async def _say_records(caplog, count: int) -> list[logging.LogRecord]:
    # `context.abort` sends the status before the outer guard writes the log line, so the
    # client can see an error before its line exists: wait for the lines instead of assuming.
    async with asyncio.timeout(5):
        while True:
            records = [r for r in caplog.records if getattr(r, "rpc_method", None) == SAY]
            if len(records) >= count:
                return records
            await asyncio.sleep(0.01)


async def _act_for(client: EchoClient, tenant: str, token: str | None) -> str:
    metadata = bearer(token) if token else ()
    return (await client.say(StringValue(value=f"tenant:{tenant}"), metadata=metadata)).value


async def test_a_scoped_token_acts_for_its_tenant(client):
    assert await _act_for(client, "t1", KIOSK_TOKEN) == "token#2"


async def test_a_scoped_token_is_denied_other_tenants_without_echoing_the_token(client):
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await _act_for(client, "t2", KIOSK_TOKEN)
    error = raised.value
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert _error_info(error).reason == "TENANT_FORBIDDEN"
    assert dict(_error_info(error).metadata) == {"tenant_id": "t2"}
    assert "t2" in (error.details() or "")
    assert KIOSK_TOKEN not in (error.details() or "")
    assert all(KIOSK_TOKEN not in str(value) for _, value in error.trailing_metadata() or ())


async def test_both_secrets_of_a_rotating_scope_act_for_it(client):
    assert await _act_for(client, "t1", KIOSK_TOKEN_NEXT) == "token#3"
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await _act_for(client, "t2", KIOSK_TOKEN_NEXT)
    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize("tenant", ["t1", "t2"])
async def test_an_unscoped_token_acts_for_every_tenant(client, tenant):
    assert await _act_for(client, tenant, TOKEN_ONE) == "token#1"


async def test_a_server_stream_runs_as_the_caller_across_messages(client):
    responses = client.count(StringValue(value="t1,t1,t1"), metadata=bearer(KIOSK_TOKEN))
    assert [message.value async for message in responses] == ["t1:token#2"] * 3


async def test_a_server_stream_is_denied_at_the_first_foreign_tenant(client):
    responses = client.count(StringValue(value="t1,t2,t1"), metadata=bearer(KIOSK_TOKEN))
    received = []
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        async for message in responses:
            received.append(message.value)
    assert received == ["t1:token#2"]
    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert _error_info(raised.value).reason == "TENANT_FORBIDDEN"


async def test_concurrent_calls_each_run_as_their_own_caller(client):
    calls = [_act_for(client, "t1", token) for token in (KIOSK_TOKEN, TOKEN_ONE, KIOSK_TOKEN_NEXT) * 5]
    assert await asyncio.gather(*calls) == ["token#2", "token#1", "token#3"] * 5


@pytest.mark.parametrize("tenant", ["t1", "t2"])
async def test_dev_mode_acts_for_every_tenant(serve, channel_to, tenant):
    running = await serve(echo_spec(TenantEchoServicer()), make_settings(dev_mode=True, auth_tokens=[]))
    assert await _act_for(EchoClient(channel_to(running)), tenant, None) == "anonymous-dev"


async def test_a_client_certificate_acts_for_every_tenant_under_its_name(serve, tmp_path):
    certificates = make_certificates(tmp_path)
    settings = make_settings(
        auth_tokens=[],
        tls_cert_file=str(certificates.server_cert),
        tls_key_file=str(certificates.server_key),
        tls_client_ca_file=str(certificates.ca),
    )
    running = await serve(echo_spec(TenantEchoServicer()), settings)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=certificates.ca.read_bytes(),
        private_key=certificates.client_key.read_bytes(),
        certificate_chain=certificates.client_cert.read_bytes(),
    )
    async with grpc.aio.secure_channel(f"localhost:{running.port}", credentials) as channel:
        assert await _act_for(EchoClient(channel), "t2", None) == "cert:inventory-client"


async def test_the_rpc_log_line_names_the_caller_never_the_secret(client, caplog):
    caplog.set_level(logging.INFO, logger="posgate")
    await _act_for(client, "t1", KIOSK_TOKEN)
    with pytest.raises(grpc.aio.AioRpcError):
        await _act_for(client, "t2", KIOSK_TOKEN)
    with pytest.raises(grpc.aio.AioRpcError):
        await _act_for(client, "t1", "wrong-token-0f0f")

    records = await _say_records(caplog, 3)
    assert [(record.rpc_code, record.caller) for record in records] == [
        ("OK", "token#2"),
        ("PERMISSION_DENIED", "token#2"),
        ("UNAUTHENTICATED", "-"),
    ]
    assert "caller=token#2 " in records[0].getMessage()
    assert all(KIOSK_TOKEN not in record.getMessage() for record in caplog.records)


async def test_the_dev_mode_log_line_names_the_anonymous_caller(serve, channel_to, caplog):
    caplog.set_level(logging.INFO, logger="posgate")
    running = await serve(echo_spec(TenantEchoServicer()), make_settings(dev_mode=True, auth_tokens=[]))
    await _act_for(EchoClient(channel_to(running)), "t1", None)
    (record,) = await _say_records(caplog, 1)
    assert record.caller == "anonymous-dev"


async def test_a_scope_with_an_empty_tenant_name_stops_the_server_from_starting():
    settings = make_settings(auth_tokens=[SecretStr(TOKEN_ONE), SecretStr(f"{KIOSK_TOKEN}@t1||t2")])
    with pytest.raises(ServerConfigurationError, match="token#2 has an empty tenant name") as raised:
        await start_server(echo_spec(), settings, port=0)
    assert KIOSK_TOKEN not in str(raised.value)
