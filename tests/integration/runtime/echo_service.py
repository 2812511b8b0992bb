"""A tiny gRPC service built from well-known messages, registered like generated code is."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
from google.protobuf.wrappers_pb2 import StringValue

from posgate.errors import Aborted, FieldViolation, InvalidArgument, NotFound
from posgate.runtime.correlation import current_correlation_id

SERVICE_NAME = "posgate.testing.v1.EchoService"
SAY = f"/{SERVICE_NAME}/Say"
COUNT = f"/{SERVICE_NAME}/Count"
SECRET_IN_ERROR = "password=hunter2 at db.internal:5432"


class EchoServicer:
    """Say answers by keyword; Count streams numbers."""

    def __init__(self) -> None:
        self.slow_call_started = asyncio.Event()

    async def Say(self, request: StringValue, context: Any) -> StringValue:
        text = request.value
        if text == "missing":
            raise NotFound("no such SKU", reason="SKU_NOT_FOUND", metadata={"sku": "A1", "store": "S9"})
        if text == "invalid":
            raise InvalidArgument(
                "the request has invalid fields",
                violations=[FieldViolation("lines[0].quantity", "must be positive")],
            )
        if text == "boom":
            raise RuntimeError(SECRET_IN_ERROR)
        if text.startswith("slow:"):
            self.slow_call_started.set()
            await asyncio.sleep(float(text.removeprefix("slow:")))
            return StringValue(value="done")
        if text == "correlation-id":
            return StringValue(value=current_correlation_id() or "")
        return StringValue(value=text)

    async def Count(self, request: StringValue, context: Any) -> AsyncIterator[StringValue]:
        for number in range(3):
            if request.value == "fail-at-2" and number == 2:
                raise Aborted("version changed", reason="VERSION_CONFLICT")
            yield StringValue(value=str(number))


def add_EchoServicer_to_server(servicer: EchoServicer, server: grpc.aio.Server) -> None:
    """Same shape as a generated `add_<Service>Servicer_to_server`."""
    handlers = {
        "Say": grpc.unary_unary_rpc_method_handler(
            servicer.Say,
            request_deserializer=StringValue.FromString,
            response_serializer=StringValue.SerializeToString,
        ),
        "Count": grpc.unary_stream_rpc_method_handler(
            servicer.Count,
            request_deserializer=StringValue.FromString,
            response_serializer=StringValue.SerializeToString,
        ),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),))


class EchoClient:
    """Typed callables for the two methods on a channel."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        codec: dict[str, Any] = {
            "request_serializer": StringValue.SerializeToString,
            "response_deserializer": StringValue.FromString,
        }
        self.say = channel.unary_unary(SAY, **codec)
        self.count = channel.unary_stream(COUNT, **codec)
