"""The per-RPC log line: its level, and no work at all when that level is disabled."""

from __future__ import annotations

import logging

import grpc

from posgate.runtime.call import RpcCall
from posgate.runtime.request_log import RequestLog

METHOD = "/posgate.inventory.v1.InventoryService/ApplyMovements"


class _Context:
    """Stands in for the servicer context; counts what the log line asks of it."""

    def __init__(self) -> None:
        self.peer_calls = 0

    def peer(self) -> str:
        self.peer_calls += 1
        return "ipv4:127.0.0.1:5555"


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


def test_a_disabled_level_costs_nothing(caplog):
    context = _Context()
    log = RequestLog(_logger(logging.WARNING), "inventory", METHOD, quiet=False)
    rpc = RpcCall(None, "cid-1")
    rpc.end()
    log.write(grpc.StatusCode.OK, rpc, context)
    assert context.peer_calls == 0
    assert not caplog.records


def test_an_enabled_line_carries_every_field(caplog):
    caplog.set_level(logging.INFO, logger="posgate.rpc.test")
    log = RequestLog(_logger(logging.INFO), "inventory", METHOD, quiet=False)
    rpc = RpcCall(None, "cid-2")
    rpc.end()
    log.write(grpc.StatusCode.OK, rpc, _Context())
    (record,) = caplog.records
    assert record.getMessage().startswith(f"rpc component=inventory method={METHOD} code=OK duration_ms=")
    assert record.getMessage().endswith("peer=ipv4:127.0.0.1:5555 caller=anonymous-dev correlation_id=cid-2")
    assert (record.rpc_code, record.caller, record.correlation_id) == ("OK", "anonymous-dev", "cid-2")
