"""Server interceptors: correlation ids with one log line per RPC, and domain-error mapping.

Each interceptor wraps the behaviour of the `RpcMethodHandler` it receives in an async context
manager (a "guard") that runs around the handler, for all four RPC shapes. The first
interceptor given to the server is the outermost guard.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

import grpc

from posgate.errors import DomainError
from posgate.runtime import correlation
from posgate.runtime.caller import current_caller
from posgate.runtime.status import rich_status

if TYPE_CHECKING:
    # grpc's classes are generic only in grpc-stubs, so these aliases exist for mypy alone.
    Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]
    Continuation: TypeAlias = Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]]
    RpcGuard: TypeAlias = Callable[[Context], AbstractAsyncContextManager[None]]
    # The handler attributes are typed for the sync stack in grpc-stubs; aio passes its own
    # context and may return an async iterator.
    Behaviour: TypeAlias = Callable[..., Any]

# Kubernetes probes health every few seconds per pod; at INFO they would drown the real traffic.
QUIET_METHOD_PREFIXES: tuple[str, ...] = ("/grpc.health.v1.Health/",)

_SERVER_FAULTS = frozenset({grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DATA_LOSS})
# Logged as the caller of an RPC whose credentials were checked and refused.
NO_CALLER = "-"


@dataclass
class _RpcFacts:
    """What inner guards learn about an RPC for the log line the outermost guard writes."""

    caller: str


# Inner guards end (and reset their own context variables) before the log line is written, so
# they report into this per-RPC record instead.
_rpc_facts: ContextVar[_RpcFacts | None] = ContextVar("posgate_rpc_facts", default=None)


def note_caller(name: str) -> None:
    """Name the caller on the current RPC's log line; does nothing outside a logged RPC."""
    facts = _rpc_facts.get()
    if facts is not None:
        facts.caller = name


def guarded(handler: grpc.RpcMethodHandler[Any, Any], guard: RpcGuard) -> grpc.RpcMethodHandler[Any, Any]:
    """Return a copy of `handler` whose behaviour runs inside `async with guard(context)`."""
    options: dict[str, Any] = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(_guard_unary(handler.unary_unary, guard), **options)
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(_guard_stream(handler.unary_stream, guard), **options)
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(_guard_unary(handler.stream_unary, guard), **options)
    if handler.stream_stream is not None:
        return grpc.stream_stream_rpc_method_handler(_guard_stream(handler.stream_stream, guard), **options)
    return handler


def _guard_unary(behaviour: Behaviour, guard: RpcGuard) -> Behaviour:
    async def call(request: Any, context: Context) -> Any:
        async with guard(context):
            return await behaviour(request, context)

    return call


def _guard_stream(behaviour: Behaviour, guard: RpcGuard) -> Behaviour:
    async def call(request: Any, context: Context) -> AsyncIterator[Any]:
        async with guard(context):
            responses = behaviour(request, context)
            if inspect.isawaitable(responses):
                # Reader/writer style: the handler writes through the context and returns None.
                await responses
            else:
                async for response in responses:
                    yield response

    return call


def metadata_value(metadata: Sequence[tuple[str, str | bytes]] | None, key: str) -> str | None:
    """Return the first text value of `key` in invocation metadata, or None."""
    for item_key, value in metadata or ():
        if item_key == key and isinstance(value, str):
            return value
    return None


def _with_correlation_trailer(context: Context, correlation_id: str) -> None:
    trailers = tuple(context.trailing_metadata() or ())
    if not any(key == correlation.METADATA_KEY for key, _ in trailers):
        context.set_trailing_metadata((*trailers, (correlation.METADATA_KEY, correlation_id)))


class CorrelationLoggingInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]  # generic in grpc-stubs only
    """Gives every RPC a correlation id and logs one structured line when it ends.

    The id comes from the caller's `x-correlation-id` metadata or is generated; handlers read
    it with `posgate.runtime.correlation.current_correlation_id()` and the caller gets it back
    in the trailing metadata. Metadata values are never logged: they carry credentials; the
    caller is logged by name (`token#1`, `cert:<CN>`, `anonymous-dev` in dev mode, `-` when
    refused).
    """

    def __init__(
        self,
        component: str,
        logger: logging.Logger | None = None,
        quiet_prefixes: Sequence[str] = QUIET_METHOD_PREFIXES,
    ) -> None:
        """Create the interceptor.

        Args:
            component: Component name, part of every log line.
            logger: Where the lines go (`posgate.rpc` by default).
            quiet_prefixes: Methods logged at DEBUG when they succeed (orchestrator probes).

        """
        self._component = component
        self._logger = logger or logging.getLogger("posgate.rpc")
        self._quiet_prefixes = tuple(quiet_prefixes)

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler[Any, Any]:
        """Wrap the handler so that it runs inside a correlation scope and gets logged."""
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        candidate = metadata_value(handler_call_details.invocation_metadata, correlation.METADATA_KEY)
        correlation_id = correlation.accept_correlation_id(candidate)
        return guarded(handler, functools.partial(self._observe, handler_call_details.method, correlation_id))

    @asynccontextmanager
    async def _observe(self, method: str, correlation_id: str, context: Context) -> AsyncIterator[None]:
        started = time.perf_counter()
        code = grpc.StatusCode.UNKNOWN
        # The auth guard replaces this; without one (dev mode, health) the default caller stands.
        facts = _RpcFacts(caller=current_caller().name)
        facts_token = _rpc_facts.set(facts)
        # Set before the handler runs, so that an abort without trailers still carries it.
        _with_correlation_trailer(context, correlation_id)
        try:
            with correlation.correlation_scope(correlation_id):
                yield
            _with_correlation_trailer(context, correlation_id)
            code = context.code() or grpc.StatusCode.OK
        except grpc.aio.AbortError:
            code = context.code() or grpc.StatusCode.UNKNOWN
            raise
        except asyncio.CancelledError:
            code = grpc.StatusCode.CANCELLED
            raise
        finally:
            with suppress(ValueError):  # finalised from another context: see correlation_scope
                _rpc_facts.reset(facts_token)
            duration_ms = (time.perf_counter() - started) * 1000
            self._log(method, code, duration_ms, context, correlation_id=correlation_id, facts=facts)

    def _log(
        self,
        method: str,
        code: grpc.StatusCode,
        duration_ms: float,
        context: Context,
        *,
        correlation_id: str,
        facts: _RpcFacts,
    ) -> None:
        level = logging.ERROR if code in _SERVER_FAULTS else logging.INFO
        if code == grpc.StatusCode.OK and method.startswith(self._quiet_prefixes):
            level = logging.DEBUG
        peer = context.peer()
        # A handler may pass anything to set_code; logging must not fail over it.
        code_name = getattr(code, "name", str(code))
        self._logger.log(
            level,
            "rpc component=%s method=%s code=%s duration_ms=%.1f peer=%s caller=%s correlation_id=%s",
            self._component,
            method,
            code_name,
            duration_ms,
            peer,
            facts.caller,
            correlation_id,
            extra={
                "component": self._component,
                "rpc_method": method,
                "rpc_code": code_name,
                "duration_ms": round(duration_ms, 1),
                "peer": peer,
                "caller": facts.caller,
                "correlation_id": correlation_id,
            },
        )


class ErrorMappingInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]  # generic in grpc-stubs only
    """Turns exceptions from handlers into gRPC statuses.

    A `DomainError` becomes its mapped code with `ErrorInfo` (and `BadRequest`) details;
    anything else becomes INTERNAL with a generic message, and the traceback goes to the log
    only, so internals never reach callers.
    """

    def __init__(self, logger: logging.Logger | None = None) -> None:
        """Create the interceptor; unexpected errors are logged to `logger`."""
        self._logger = logger or logging.getLogger("posgate.rpc")

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler[Any, Any]:
        """Wrap the handler so that its exceptions become statuses."""
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        return guarded(handler, functools.partial(self._map_errors, handler_call_details.method))

    @asynccontextmanager
    async def _map_errors(self, method: str, context: Context) -> AsyncIterator[None]:
        try:
            yield
        except grpc.aio.AbortError:
            raise
        except DomainError as error:
            status = rich_status(error)
            trailers = (*(context.trailing_metadata() or ()), *status.trailing_metadata)
            await context.abort(status.code, status.details, trailers)
        except Exception:
            correlation_id = correlation.current_correlation_id()
            self._logger.exception("unexpected error in %s correlation_id=%s", method, correlation_id)
            await context.abort(grpc.StatusCode.INTERNAL, f"internal error (correlation id {correlation_id})")
