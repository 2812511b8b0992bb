"""The server interceptor: correlation id, caller authentication, error mapping, one log line.

Everything a posgate server does around a handler happens in one wrapper per RPC (and one
generator hop per streamed message), built once per method and reused: a chain of separate
interceptors cost a coroutine, a handler copy and an async context manager each, per RPC.
Inside the wrapper, in order: the correlation id is made current and set as a trailer; the
caller is authenticated (unless the method is open or the server is in dev mode) and made
current; the handler runs; a `DomainError` becomes its status with rich details, anything
else INTERNAL; the RPC is logged once with its final code.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias, cast

import grpc

from posgate.errors import DomainError
from posgate.runtime.auth import UNAUTHENTICATED_METHOD_PREFIXES, CallerPolicy
from posgate.runtime.call import NO_CALLER, RpcCall, begin_call
from posgate.runtime.request_log import QUIET_METHOD_PREFIXES, RequestLog
from posgate.runtime.status import rich_status

if TYPE_CHECKING:
    from posgate.runtime.call import Metadata as CallMetadata

    # grpc's classes are generic only in grpc-stubs, so these aliases exist for mypy alone.
    Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]
    Continuation: TypeAlias = Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]]
    # The handler attributes are typed for the sync stack in grpc-stubs; aio passes its own
    # context and may return an async iterator.
    Behaviour: TypeAlias = Callable[..., Any]

_OK = grpc.StatusCode.OK
_UNKNOWN = grpc.StatusCode.UNKNOWN
_CANCELLED = grpc.StatusCode.CANCELLED
# Methods are a fixed set per server; the bound only guards against a generic handler that
# answers for arbitrary names.
_MAX_CACHED_METHODS = 1024


class RpcInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]  # generic in grpc-stubs only
    """Gives every RPC a correlation id, its caller, error mapping and one structured log line.

    The id comes from the caller's `x-correlation-id` metadata or is generated; handlers read
    it with `posgate.runtime.correlation.current_correlation_id()` and the caller gets it back
    in the trailing metadata. Outside dev mode (`policy` given) every method but the open ones
    needs credentials, and the handler runs as the authenticated `Caller`. Metadata values are
    never logged: they carry credentials.
    """

    def __init__(
        self,
        component: str,
        policy: CallerPolicy | None,
        *,
        logger: logging.Logger | None = None,
        quiet_prefixes: Sequence[str] = QUIET_METHOD_PREFIXES,
        open_prefixes: Sequence[str] = UNAUTHENTICATED_METHOD_PREFIXES,
    ) -> None:
        """Create the interceptor.

        Args:
            component: Component name, part of every log line.
            policy: Accepted credentials; None in dev mode, where callers are not checked.
            logger: Where the lines go (`posgate.rpc` by default).
            quiet_prefixes: Methods logged at DEBUG when they succeed (orchestrator probes).
            open_prefixes: Methods that need no credentials (health).

        """
        self._component = component
        self._policy = policy
        self._logger = logger or logging.getLogger("posgate.rpc")
        self._quiet_prefixes = tuple(quiet_prefixes)
        self._open_prefixes = tuple(open_prefixes)
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler[Any, Any], grpc.RpcMethodHandler[Any, Any]]] = {}

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler[Any, Any]:
        """Return the method's wrapped handler, built on its first call."""
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = _MethodGuard(self._guard_settings(method)).wrap(handler)
        if len(self._wrapped) < _MAX_CACHED_METHODS:
            self._wrapped[method] = (handler, wrapped)
        return wrapped

    def _guard_settings(self, method: str) -> _GuardSettings:
        policy = None if method.startswith(self._open_prefixes) else self._policy
        log = RequestLog(self._logger, self._component, method, quiet=method.startswith(self._quiet_prefixes))
        return _GuardSettings(method, policy, log)


class _GuardSettings:
    """What one method's wrapper needs, decided once per method rather than per RPC."""

    __slots__ = ("log", "method", "policy")

    def __init__(self, method: str, policy: CallerPolicy | None, log: RequestLog) -> None:
        self.method = method
        self.policy = policy
        self.log = log


class _MethodGuard:
    """Runs one method's handler inside the per-RPC work, for all four RPC shapes."""

    def __init__(self, settings: _GuardSettings) -> None:
        self._method = settings.method
        self._policy = settings.policy
        self._log = settings.log

    def wrap(self, handler: grpc.RpcMethodHandler[Any, Any]) -> grpc.RpcMethodHandler[Any, Any]:
        """Return a copy of `handler` whose behaviour runs inside the guard."""
        options: dict[str, Any] = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(self._unary(handler.unary_unary), **options)
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(self._stream(handler.unary_stream), **options)
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(self._unary(handler.stream_unary), **options)
        if handler.stream_stream is not None:
            return grpc.stream_stream_rpc_method_handler(self._stream(handler.stream_stream), **options)
        return handler

    def _unary(self, behaviour: Behaviour) -> Behaviour:
        async def call(request: Any, context: Context) -> Any:
            rpc = self._begin(context)
            code = _UNKNOWN
            try:
                try:
                    self._authenticate(rpc, context)
                    response = await behaviour(request, context)
                except grpc.aio.AbortError:
                    raise
                except DomainError as error:
                    await _abort_with(context, error)
                except Exception:
                    await self._abort_internal(context, rpc.correlation_id)
                code = rpc.succeeded(context)
                return response
            except grpc.aio.AbortError:
                code = context.code() or _UNKNOWN
                raise
            except asyncio.CancelledError:
                code = _CANCELLED
                raise
            finally:
                rpc.end()
                self._log.write(code, rpc)

        return call

    def _stream(self, behaviour: Behaviour) -> Behaviour:
        async def call(request: Any, context: Context) -> AsyncIterator[Any]:
            rpc = self._begin(context)
            code = _UNKNOWN
            try:
                try:
                    self._authenticate(rpc, context)
                    responses = behaviour(request, context)
                    if inspect.isawaitable(responses):
                        # Reader/writer style: the handler writes through the context.
                        await responses
                    else:
                        async for response in responses:
                            yield response
                except grpc.aio.AbortError:
                    raise
                except DomainError as error:
                    await _abort_with(context, error)
                except Exception:
                    await self._abort_internal(context, rpc.correlation_id)
                code = rpc.succeeded(context)
            except grpc.aio.AbortError:
                code = context.code() or _UNKNOWN
                raise
            except asyncio.CancelledError:
                code = _CANCELLED
                raise
            finally:
                rpc.end()
                self._log.write(code, rpc)

        return call

    def _begin(self, context: Context) -> RpcCall:
        # grpc-stubs type it as `aio.Metadata`; grpc.aio hands over the (key, value) tuple.
        return begin_call(context, cast("CallMetadata | None", context.invocation_metadata()))

    def _authenticate(self, rpc: RpcCall, context: Context) -> None:
        # Inside the handler's own coroutine or async generator, so that the caller is reset
        # with it; refused credentials are logged as `-`.
        if self._policy is not None:
            rpc.caller = NO_CALLER
            rpc.run_as(self._policy.authenticate(rpc.metadata, context.auth_context()))

    async def _abort_internal(self, context: Context, correlation_id: str) -> None:
        # Called while the exception is handled: the traceback goes to the log, never to callers.
        self._log.logger.exception("unexpected error in %s correlation_id=%s", self._method, correlation_id)
        await context.abort(grpc.StatusCode.INTERNAL, f"internal error (correlation id {correlation_id})")


async def _abort_with(context: Context, error: DomainError) -> None:
    status = rich_status(error)
    trailers = (*(context.trailing_metadata() or ()), *status.trailing_metadata)
    await context.abort(status.code, status.details, trailers)
