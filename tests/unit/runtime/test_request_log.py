"""The per-RPC log line: its level, no work when that level is disabled, and nothing read of an ended call."""

from __future__ import annotations

import logging

import grpc
import pytest

from posgate.runtime.call import begin_call
from posgate.runtime.request_log import RequestLog

METHOD = "/posgate.inventory.v1.InventoryService/ApplyMovements"


class _Context:
    """Stands in for the servicer context; once `gone`, every use fails, as a freed call would."""

    def __init__(self) -> None:
        self.gone = False
        self.peer_calls = 0
        self._trailers: tuple[tuple[str, str | bytes], ...] = ()

    def _alive(self) -> None:
        if self.gone:
            raise AssertionError("the call's context was used after the call ended")

    def peer(self) -> str:
        self._alive()
        self.peer_calls += 1
        return "ipv4:127.0.0.1:5555"

    def trailing_metadata(self) -> tuple[tuple[str, str | bytes], ...]:
        self._alive()
        return self._trailers

    def set_trailing_metadata(self, trailers: tuple[tuple[str, str | bytes], ...]) -> None:
        self._alive()
        self._trailers = trailers


def _logger(level: int) -> logging.Logger:
    logger = logging.getLogger(f"posgate.rpc.test.{level}")
    logger.setLevel(level)
    return logger


def test_levels_follow_the_code_and_quiet_methods():
    log = RequestLog(_logger(logging.INFO), "inventory", METHOD, quiet=True)
    assert log.level(grpc.StatusCode.OK) == logging.DEBUG
    assert log.level(grpc.StatusCode.NOT_FOUND) == logging.INFO
    assert log.level(grpc.StatusCode.INTERNAL) == logging.ERROR
    loud = RequestLog(_logger(logging.INFO), "inventory", METHOD, quiet=False)
    assert loud.level(grpc.StatusCode.OK) == logging.INFO


def test_a_disabled_level_writes_nothing(caplog):
    log = RequestLog(_logger(logging.WARNING), "inventory", METHOD, quiet=False)
    rpc = begin_call(_Context(), None)
    rpc.end()
    log.write(grpc.StatusCode.OK, rpc)
    assert not caplog.records


@pytest.mark.parametrize("code", [grpc.StatusCode.OK, grpc.StatusCode.CANCELLED, grpc.StatusCode.INTERNAL])
def test_the_line_of_an_ended_call_carries_every_field(caplog, code):
    caplog.set_level(logging.INFO, logger="posgate.rpc.test")
    log = RequestLog(_logger(logging.INFO), "inventory", METHOD, quiet=False)
    context = _Context()
    rpc = begin_call(context, (("x-correlation-id", "cid-2"),))
    # A server stopping cancels its calls; their handlers log after the call is gone.
    context.gone = True
    rpc.end()
    log.write(code, rpc)
    (record,) = caplog.records
    message = record.getMessage()
    assert message.startswith(f"rpc component=inventory method={METHOD} code={code.name} duration_ms=")
    assert message.endswith("peer=ipv4:127.0.0.1:5555 caller=anonymous-dev correlation_id=cid-2")
    assert (record.rpc_code, record.caller, record.correlation_id) == (code.name, "anonymous-dev", "cid-2")
    assert context.peer_calls == 1
