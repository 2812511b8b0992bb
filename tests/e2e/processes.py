"""Run `posgate` as a real process for end-to-end tests."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

POSGATE = [sys.executable, "-m", "posgate.cli"]


_HANDED_OUT: set[int] = set()


def _ephemeral_low() -> int:
    """The lowest port the kernel gives outgoing connections (Linux: 32768 unless tuned)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A TCP port nobody listens on right now, below the range outgoing connections draw from.

    A port the kernel picks for `bind(0)` comes from that range, and between this probe and the
    child's own bind an outgoing connection (to PostgreSQL, RabbitMQ) could take it as its local
    port: a gateway once failed to start in CI with `Address already in use` that way. Ports
    below the range are never handed out implicitly; each is probed, and none is given twice.
    """
    high = _ephemeral_low()
    low = max(1024, high // 2)
    for port in random.sample(range(low, high), k=min(500, high - low)):
        if port in _HANDED_OUT:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    raise RuntimeError(f"no free TCP port in {low}-{high - 1}")


class PosgateProcess:
    """A `posgate` child process with its own environment; stopped with SIGTERM."""

    def __init__(self, args: Sequence[str], env: Mapping[str, str], log: Path) -> None:
        self._log = log
        self._log_file = log.open("wb")
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("POSGATE_")}
        full_env.update(env)
        self.process = subprocess.Popen(
            [*POSGATE, *args], env=full_env, stdout=self._log_file, stderr=subprocess.STDOUT
        )

    def output(self) -> str:
        """Everything the process printed so far."""
        if not self._log_file.closed:
            self._log_file.flush()
        return self._log.read_text(errors="replace")

    def terminate(self, timeout: float = 20) -> int:
        """SIGTERM, wait, and return the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout)
        self._log_file.close()
        return code


async def health_status(port: int, service: str = "") -> str:
    """The health status name, or the gRPC error code name when the call fails."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            response = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=2
            )
        except grpc.aio.AioRpcError as error:
            return str(error.code().name)
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(response.status))


async def wait_serving(process: PosgateProcess, port: int, timeout_s: float = 30) -> None:
    """Wait until the server on `port` answers SERVING; fail with the process output if not."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    status = "not started"
    while asyncio.get_running_loop().time() < deadline:
        if process.process.poll() is not None:
            raise AssertionError(f"posgate exited {process.process.returncode}:\n{process.output()}")
        status = await health_status(port)
        if status == "SERVING":
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"port {port} never SERVING (last: {status}):\n{process.output()}")
