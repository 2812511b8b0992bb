"""One call on the stream edge, unary or server-streaming: authenticate, decode, run the handler, end it.

It does what `RpcInterceptor` does around a `grpc.aio` handler (correlation id, caller, error
mapping with rich details, one log line) with the same helpers, so a call is logged and refused
the same way on either port. `EdgeContext` is the part of `grpc.aio.ServicerContext` that
those helpers and the servicers use.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol, cast

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import DecodeError, Message
from google.protobuf.message_factory import GetMessageClass

from posgate.errors import DomainError, InvalidArgument
from posgate.runtime import edge_wire
from posgate.runtime.auth import CallerPolicy
from posgate.runtime.call import NO_CALLER, begin_call
from posgate.runtime.request_log import RequestLog
from posgate.runtime.status import status_code_for

if TYPE_CHECKING:
    from posgate.runtime.call import RpcCall

Handler = Callable[[Any, Any], AsyncIterator[Any]] | Callable[[Any, Any], Awaitable[Message]]


class Handoff(Protocol):
    """A live stream its handler hands over: the edge pushes each message with no task per stream.

    A handler yields one as its last item, after the messages it sends itself (a snapshot).
    """

    def attach(self, push: Callable[[bytes], bool], end: Callable[[DomainError], None]) -> None:
        """Send each message through `push` (False: not now, keep it for `resume`); `end` on failure."""

    def resume(self) -> None:
        """The connection can take more: push what waited."""

    def detach(self) -> None:
        """The call ended (client reset, deadline, shutdown): stop pushing; idempotent."""


@dataclass(frozen=True, slots=True)
class Handed:
    """A handed-over call: its stream, its handoff, and how to end and log it later."""

    stream_id: int
    handoff: Handoff
    context: EdgeContext
    log_end: Callable[[grpc.StatusCode], None]
    deadline_s: float | None


@dataclass(frozen=True)
class EdgeMethod:
    """A method the edge serves: its path, request parser and handler.

    The handler has the servicer's shape, so the method the gRPC port serves is registered here
    unchanged: `(request, context) -> async iterator of responses` for a server-streaming
    method, whose last item may be a `Handoff`; `(request, context) -> awaitable response` for
    a `unary` one. `request_limit` (bytes) replaces the edge's own limit for this method.
    """

    path: str
    decode: Callable[[bytes], Message]
    handler: Handler
    unary: bool = False
    request_limit: int | None = None


def unary_methods(service: ServiceDescriptor, servicer: object, *, request_limit: int) -> list[EdgeMethod]:
    """An `EdgeMethod` for every unary method of `service`, served by the servicer's method of its name."""
    return [
        EdgeMethod(
            f"/{service.full_name}/{method.name}",
            GetMessageClass(method.input_type).FromString,
            getattr(servicer, method.name),
            unary=True,
            request_limit=request_limit,
        )
        for method in service.methods
        if not method.client_streaming and not method.server_streaming
    ]


class Outlet(Protocol):
    """Where a call's response goes: its HTTP/2 stream on one connection."""

    async def send(self, stream_id: int, message: bytes) -> None:
        """Send one response message, waiting while flow control holds it back."""

    def finish(self, stream_id: int, trailers: list[edge_wire.Header]) -> None:
        """End the stream with its trailers (headers and trailers in one block if nothing was sent)."""

    def hand_off(self, handed: Handed) -> None:
        """Take over a live stream: push its messages, end and log it when it ends."""


class CallGone(Exception):
    """The client reset the stream or the connection closed: nothing more can be sent."""


class EdgeContext:
    """The servicer context of one edge call: metadata in, trailers out, peer and auth facts."""

    __slots__ = ("_auth", "_metadata", "_peer", "_trailers")

    def __init__(self, metadata: edge_wire.Metadata, peer: str, auth: Mapping[str, Iterable[bytes]]) -> None:
        """A context for a call with `metadata` from `peer` over a transport described by `auth`."""
        self._metadata = metadata
        self._peer = peer
        self._auth = auth
        self._trailers: tuple[tuple[str, str | bytes], ...] = ()

    def invocation_metadata(self) -> edge_wire.Metadata:
        """The request's metadata, as `grpc.aio` hands it over."""
        return self._metadata

    def auth_context(self) -> Mapping[str, Iterable[bytes]]:
        """The transport's view of the peer (client certificate under mTLS)."""
        return self._auth

    def peer(self) -> str:
        """The client's address, `ipv4:host:port` as gRPC writes it."""
        return self._peer

    def trailing_metadata(self) -> tuple[tuple[str, str | bytes], ...]:
        """The custom trailers set so far."""
        return self._trailers

    def set_trailing_metadata(self, trailers: tuple[tuple[str, str | bytes], ...]) -> None:
        """Replace the custom trailers."""
        self._trailers = tuple(trailers)

    def code(self) -> grpc.StatusCode | None:
        """No handler sets a code here: it raises a `DomainError` instead."""
        return None


@dataclass(frozen=True)
class CallSettings:
    """What every call of one edge shares."""

    policy: CallerPolicy | None
    logger: logging.Logger
    component: str
    request_limit: int
    logs: dict[str, RequestLog] = field(default_factory=dict)

    def limit_of(self, method: EdgeMethod | None) -> int:
        """The largest request message `method` takes, in bytes."""
        if method is None or method.request_limit is None:
            return self.request_limit
        return method.request_limit

    def log_of(self, path: str) -> RequestLog:
        """The log line writer of one method, built once."""
        log = self.logs.get(path)
        if log is None:
            log = self.logs[path] = RequestLog(self.logger, self.component, path, quiet=False)
        return log


@dataclass(frozen=True)
class CallRequest:
    """One call as it arrived: method, stream, body and the client's deadline (`grpc-timeout`)."""

    method: EdgeMethod
    stream_id: int
    body: bytes
    deadline_s: float | None


async def serve_call(settings: CallSettings, call: CallRequest, context: EdgeContext, outlet: Outlet) -> None:
    """Run one call to its end and log it; only cancellation escapes."""
    log = settings.log_of(call.method.path)
    rpc = begin_call(context, context.invocation_metadata())  # type: ignore[arg-type]  # duck-typed context
    code: grpc.StatusCode | None = grpc.StatusCode.UNKNOWN
    started = asyncio.get_running_loop().time()
    try:
        async with asyncio.timeout(call.deadline_s):
            outcome = await _run(settings, call, context, outlet, rpc)
        if not isinstance(outcome, grpc.StatusCode):
            left = (
                None
                if call.deadline_s is None
                else call.deadline_s - (asyncio.get_running_loop().time() - started)
            )
            outlet.hand_off(Handed(call.stream_id, outcome, context, partial(log.write, rpc=rpc), left))
            code = None
        else:
            code = outcome
    except TimeoutError:
        code = grpc.StatusCode.DEADLINE_EXCEEDED
        expired = edge_wire.trailers(code, "deadline exceeded", context.trailing_metadata())
        outlet.finish(call.stream_id, expired)
    except CallGone:
        code = grpc.StatusCode.CANCELLED
    except asyncio.CancelledError:
        code = grpc.StatusCode.CANCELLED
        raise
    finally:
        rpc.end()
        if code is not None:
            log.write(code, rpc)


async def _run(
    settings: CallSettings, call: CallRequest, context: EdgeContext, outlet: Outlet, rpc: RpcCall
) -> grpc.StatusCode | Handoff:
    method, stream_id = call.method, call.stream_id
    try:
        if settings.policy is not None:
            rpc.caller = NO_CALLER
            rpc.run_as(settings.policy.authenticate(context.invocation_metadata(), context.auth_context()))
        request = _decoded(method, edge_wire.request_message(call.body, settings.limit_of(method)))
        if method.unary:
            response = await cast("Awaitable[Message]", method.handler(request, context))
            await outlet.send(stream_id, response.SerializeToString())
        else:
            responses = cast("AsyncIterator[Any]", method.handler(request, context))
            handoff = await _stream(responses, outlet, stream_id)
            if handoff is not None:
                return handoff
    except DomainError as error:
        outlet.finish(stream_id, edge_wire.error_trailers(error, context.trailing_metadata()))
        return status_code_for(error)
    except (CallGone, asyncio.CancelledError):
        raise
    except Exception:
        settings.logger.exception("unexpected error in %s correlation_id=%s", method.path, rpc.correlation_id)
        message = f"internal error (correlation id {rpc.correlation_id})"
        outlet.finish(
            stream_id, edge_wire.trailers(grpc.StatusCode.INTERNAL, message, context.trailing_metadata())
        )
        return grpc.StatusCode.INTERNAL
    outlet.finish(stream_id, edge_wire.trailers(grpc.StatusCode.OK, "", context.trailing_metadata()))
    return grpc.StatusCode.OK


async def _stream(responses: AsyncIterator[Any], outlet: Outlet, stream_id: int) -> Handoff | None:
    """Send what the handler yields; return its handoff if it ends with one."""
    try:
        async for response in responses:
            if not isinstance(response, Message):
                return cast(Handoff, response)
            await outlet.send(stream_id, response.SerializeToString())
        return None
    finally:
        # A reset stream leaves the handler's generator suspended: close it now (it unsubscribes).
        close = getattr(responses, "aclose", None)
        if close is not None:
            await close()


def _decoded(method: EdgeMethod, message: bytes) -> Message:
    try:
        return method.decode(message)
    except DecodeError as error:
        raise InvalidArgument("the request message cannot be parsed", reason="MALFORMED_REQUEST") from error
