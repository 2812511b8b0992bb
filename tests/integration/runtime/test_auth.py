"""Internal callers authenticate with a bearer token or a client certificate, outside dev mode."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf.wrappers_pb2 import StringValue
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2
from grpc_status import rpc_status

from posgate.runtime.auth import ServerConfigurationError
from posgate.runtime.server import start_server
from tests.integration.runtime.certificates import make_certificates
from tests.integration.runtime.conftest import (
    TOKEN_ONE,
    TOKEN_TWO,
    bearer,
    echo_spec,
    health_status,
    make_settings,
)
from tests.integration.runtime.echo_service import EchoClient

HELLO = StringValue(value="hello")


def _reason(error: grpc.aio.AioRpcError) -> str:
    status = rpc_status.from_call(error)
    info = error_details_pb2.ErrorInfo()
    status.details[0].Unpack(info)
    return info.reason


async def _rejected(client: EchoClient, metadata) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await client.say(HELLO, metadata=metadata)
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
    return raised.value


async def test_a_call_without_credentials_is_unauthenticated(serve, channel_to):
    client = EchoClient(channel_to(await serve(echo_spec(), make_settings())))
    error = await _rejected(client, ())
    assert _reason(error) == "CREDENTIALS_MISSING"


async def test_a_wrong_token_is_unauthenticated_and_not_echoed(serve, channel_to):
    client = EchoClient(channel_to(await serve(echo_spec(), make_settings())))
    error = await _rejected(client, bearer("not-the-token-5e5e"))
    assert _reason(error) == "TOKEN_INVALID"
    assert "not-the-token" not in (error.details() or "")
    assert all("not-the-token" not in str(value) for _, value in error.trailing_metadata() or ())


async def test_a_non_bearer_authorization_is_malformed(serve, channel_to):
    client = EchoClient(channel_to(await serve(echo_spec(), make_settings())))
    error = await _rejected(client, (("authorization", f"Basic {TOKEN_ONE}"),))
    assert _reason(error) == "CREDENTIALS_MALFORMED"


@pytest.mark.parametrize("token", [TOKEN_ONE, TOKEN_TWO], ids=["current", "rotated-in"])
async def test_every_configured_token_is_accepted(serve, channel_to, token):
    client = EchoClient(channel_to(await serve(echo_spec(), make_settings())))
    assert (await client.say(HELLO, metadata=bearer(token))).value == "hello"


async def test_server_streams_are_authenticated_too(serve, channel_to):
    client = EchoClient(channel_to(await serve(echo_spec(), make_settings())))
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        [message async for message in client.count(StringValue(value="ok"))]
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_dev_mode_needs_no_token(serve, channel_to):
    client = EchoClient(channel_to(await serve(echo_spec(), make_settings(dev_mode=True, auth_tokens=[]))))
    assert (await client.say(HELLO)).value == "hello"


async def test_health_is_callable_without_credentials(serve, channel_to):
    channel = channel_to(await serve(echo_spec(), make_settings()))
    assert await health_status(channel) == health_pb2.HealthCheckResponse.SERVING


async def test_outside_dev_mode_a_server_without_credentials_refuses_to_start():
    with pytest.raises(ServerConfigurationError, match="POSGATE_AUTH_TOKENS"):
        await start_server(echo_spec(), make_settings(auth_tokens=[]), port=0)


class TestMutualTls:
    @pytest.fixture
    def certificates(self, tmp_path):
        return make_certificates(tmp_path)

    @pytest.fixture
    async def mtls_server(self, serve, certificates):
        settings = make_settings(
            auth_tokens=[],
            tls_cert_file=str(certificates.server_cert),
            tls_key_file=str(certificates.server_key),
            tls_client_ca_file=str(certificates.ca),
        )
        return await serve(echo_spec(), settings)

    @staticmethod
    def _channel(port: int, certificates, *, with_client_certificate: bool) -> grpc.aio.Channel:
        client_files = {}
        if with_client_certificate:
            client_files = {
                "private_key": certificates.client_key.read_bytes(),
                "certificate_chain": certificates.client_cert.read_bytes(),
            }
        credentials = grpc.ssl_channel_credentials(
            root_certificates=certificates.ca.read_bytes(), **client_files
        )
        return grpc.aio.secure_channel(f"localhost:{port}", credentials)

    async def test_a_verified_client_certificate_is_enough(self, mtls_server, certificates):
        async with self._channel(mtls_server.port, certificates, with_client_certificate=True) as channel:
            assert (await EchoClient(channel).say(HELLO, timeout=10)).value == "hello"

    async def test_a_tls_client_without_certificate_or_token_is_rejected(self, mtls_server, certificates):
        async with self._channel(mtls_server.port, certificates, with_client_certificate=False) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await EchoClient(channel).say(HELLO, timeout=10)
        # The TLS handshake itself refuses a client without a certificate, before any RPC runs.
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_plain_tls_with_a_bearer_token(serve, tmp_path):
    certificates = make_certificates(tmp_path)
    settings = make_settings(
        tls_cert_file=str(certificates.server_cert), tls_key_file=str(certificates.server_key)
    )
    running = await serve(echo_spec(), settings)
    credentials = grpc.ssl_channel_credentials(root_certificates=certificates.ca.read_bytes())
    async with grpc.aio.secure_channel(f"localhost:{running.port}", credentials) as channel:
        client = EchoClient(channel)
        assert (await client.say(HELLO, metadata=bearer(TOKEN_ONE), timeout=10)).value == "hello"
        await _rejected(client, ())
