"""Server reflection lists every service and describes the standard ones; it needs credentials."""

from __future__ import annotations

import grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests.integration.runtime.conftest import TOKEN_ONE, bearer, echo_spec, make_settings
from tests.integration.runtime.echo_service import SERVICE_NAME

HEALTH = "grpc.health.v1.Health"
REFLECTION = "grpc.reflection.v1alpha.ServerReflection"


async def _ask(channel, request, metadata=()):
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    responses = [response async for response in stub.ServerReflectionInfo(iter([request]), metadata=metadata)]
    assert len(responses) == 1
    return responses[0]


async def test_reflection_lists_the_component_health_and_reflection_services(serve, channel_to):
    channel = channel_to(await serve(echo_spec(), make_settings()))
    response = await _ask(
        channel, reflection_pb2.ServerReflectionRequest(list_services=""), bearer(TOKEN_ONE)
    )
    names = {service.name for service in response.list_services_response.service}
    assert names == {SERVICE_NAME, HEALTH, REFLECTION}


async def test_reflection_describes_the_health_service(serve, channel_to):
    channel = channel_to(await serve(echo_spec(), make_settings()))
    response = await _ask(
        channel, reflection_pb2.ServerReflectionRequest(file_containing_symbol=HEALTH), bearer(TOKEN_ONE)
    )
    assert response.file_descriptor_response.file_descriptor_proto


async def test_reflection_requires_credentials(serve, channel_to):
    channel = channel_to(await serve(echo_spec(), make_settings()))
    # No request is written: one written while the server refuses the call races grpc.aio's
    # client, which then reports INTERNAL instead of the server's status (grpc/grpc#36066).
    call = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(timeout=5)
    assert await call.code() == grpc.StatusCode.UNAUTHENTICATED
