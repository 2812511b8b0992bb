"""Child processes of a benchmark run: start, wait until they serve, read their memory, stop."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from benchmarks.cpu import process_seconds

REPO_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Child:
    """A Python child process whose output goes to a log file; always stopped by `stop()`."""

    def __init__(self, name: str, args: Sequence[str], env: Mapping[str, str], log_dir: Path) -> None:
        """Run `python <args>` from the repository root with `env` on top of a clean environment."""
        self.name = name
        self.log = log_dir / f"{name}.log"
        self._log_file = self.log.open("wb")
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("POSGATE_")}
        full_env.update(env)
        self.process = subprocess.Popen(
            [sys.executable, *args],
            env=full_env,
            cwd=REPO_ROOT,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self.process.pid

    def output(self, last: int = 4000) -> str:
        """The tail of what the child printed so far."""
        if not self._log_file.closed:
            self._log_file.flush()
        return self.log.read_text(errors="replace")[-last:]

    def rss_kib(self) -> int:
        """Resident memory now (VmRSS), in KiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError(f"no VmRSS for {self.name} (pid {self.pid})")

    def cpu_seconds(self) -> float:
        """User + system CPU time the child has used so far."""
        return process_seconds(self.pid)

    def stop(self, grace_s: float = 10) -> None:
        """SIGTERM, then SIGKILL after `grace_s`; safe to call twice."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        if not self._log_file.closed:
            self._log_file.close()


async def wait_serving(child: Child, port: int, *, health: bool, timeout_s: float = 30) -> None:
    """Wait until `port` accepts gRPC (and answers SERVING when `health`), or fail with the log."""
    deadline = time.monotonic() + timeout_s
    last = "not started"
    while time.monotonic() < deadline:
        if child.process.poll() is not None:
            raise RuntimeError(f"{child.name} exited {child.process.returncode}:\n{child.output()}")
        last = await _probe(port, health)
        if last == "SERVING":
            return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"{child.name} not serving on {port} after {timeout_s} s ({last}):\n{child.output()}")


async def _probe(port: int, health: bool) -> str:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            if not health:
                await asyncio.wait_for(channel.channel_ready(), timeout=1)
                return "SERVING"
            response = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=1
            )
        except (grpc.aio.AioRpcError, TimeoutError) as error:
            return type(error).__name__
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(response.status))
