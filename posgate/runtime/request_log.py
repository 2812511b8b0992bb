"""The one log line per RPC, on the `posgate.rpc` logger.

    rpc component=inventory method=/... code=OK duration_ms=3.2 peer=... caller=token#1 correlation_id=...

It is written on every RPC, so nothing is computed (duration, code name, the record's extra
fields) unless the line's level is enabled. The peer is read when the RPC begins
(`posgate.runtime.call.begin_call`), never from the context of a call that has ended.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import grpc

if TYPE_CHECKING:
    from posgate.runtime.call import RpcCall


# Kubernetes probes health every few seconds per pod; at INFO they would drown the real traffic.
QUIET_METHOD_PREFIXES: tuple[str, ...] = ("/grpc.health.v1.Health/",)

_SERVER_FAULTS = frozenset({grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DATA_LOSS})
_FORMAT = "rpc component=%s method=%s code=%s duration_ms=%.1f peer=%s caller=%s correlation_id=%s"


class RequestLog:
    """Writes the line of each RPC of one method."""

    __slots__ = ("_component", "_method", "_quiet", "logger")

    def __init__(self, logger: logging.Logger, component: str, method: str, *, quiet: bool) -> None:
        """Log RPCs of `method` to `logger`; `quiet` ones go to DEBUG when they succeed."""
        self.logger = logger
        self._component = component
        self._method = method
        self._quiet = quiet

    def level(self, code: grpc.StatusCode) -> int:
        """The level of the line of an RPC that ended with `code`."""
        if code in _SERVER_FAULTS:
            return logging.ERROR
        if self._quiet and code == grpc.StatusCode.OK:
            return logging.DEBUG
        return logging.INFO

    def write(self, code: grpc.StatusCode, rpc: RpcCall) -> None:
        """Log the RPC that just ended with `code`, unless that level is disabled.

        Nothing of the call's context is read here: the RPC may have ended because its server
        is stopping, with the call already gone (`begin_call` keeps what the line needs).
        """
        level = self.level(code)
        if not self.logger.isEnabledFor(level):
            return
        duration_ms = (time.perf_counter() - rpc.started) * 1000
        peer = rpc.peer
        # A handler may pass anything to set_code; logging must not fail over it.
        code_name = getattr(code, "name", str(code))
        self.logger.log(
            level,
            _FORMAT,
            self._component,
            self._method,
            code_name,
            duration_ms,
            peer,
            rpc.caller,
            rpc.correlation_id,
            extra={
                "component": self._component,
                "rpc_method": self._method,
                "rpc_code": code_name,
                "duration_ms": round(duration_ms, 1),
                "peer": peer,
                "caller": rpc.caller,
                "correlation_id": rpc.correlation_id,
            },
        )
