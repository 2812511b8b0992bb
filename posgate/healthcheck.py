"""`python -m posgate.healthcheck HOST:PORT [SERVICE]`: print a server's gRPC health status.

Exits 0 when the status is SERVING, 1 otherwise; for scripts, probes and the README.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


async def check(target: str, service: str = "", timeout_s: float = 5.0) -> str:
    """Return the health status name (`SERVING`, `NOT_SERVING`, ...) of `service` at `target`."""
    async with grpc.aio.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        response = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout_s)
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(response.status))


def main() -> int:
    """Print the status; exit 0 only when SERVING."""
    parser = argparse.ArgumentParser(prog="python -m posgate.healthcheck", description=__doc__)
    parser.add_argument("target", help="HOST:PORT of a posgate gRPC server")
    parser.add_argument("service", nargs="?", default="", help="service name ('' = whole server)")
    args = parser.parse_args()
    try:
        status = asyncio.run(check(args.target, args.service))
    except grpc.aio.AioRpcError as error:
        print(f"{error.code().name}: {error.details()}")
        return 1
    print(status)
    return 0 if status == "SERVING" else 1


if __name__ == "__main__":
    sys.exit(main())
