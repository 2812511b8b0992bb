"""`CommandSender`s that call the internal services over gRPC through their typed clients."""

from __future__ import annotations

import grpc
from google.protobuf.message import DecodeError

from posgate.clients.inventory import InventoryClient
from posgate.contracts import inventory
from posgate.gateway.dispatch import ItemsRejected, PermanentSendError, TransientSendError

# Codes a later attempt can fix; anything else the service says is final for this command.
_TRANSIENT = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.CANCELLED,
        # A rotated token is an outage of the gateway's configuration, not a bad command.
        grpc.StatusCode.UNAUTHENTICATED,
    }
)


def classify(error: grpc.aio.AioRpcError) -> TransientSendError | PermanentSendError:
    """The send error a gRPC status stands for (UNAVAILABLE retries, INVALID_ARGUMENT does not)."""
    code = error.code()
    message = f"{code.name}: {error.details() or ''}"
    return TransientSendError(message) if code in _TRANSIENT else PermanentSendError(message)


class InventorySender:
    """Sends `InventoryService/ApplyMovements` and `/SetCounts` commands."""

    def __init__(self, client: InventoryClient) -> None:
        """Send through `client` (its channel retries UNAVAILABLE briefly on its own)."""
        self._client = client

    async def send(self, target: str, body: bytes, idempotency_key: str) -> None:
        """Decode `body` as the target's request and call the service.

        Raises:
            TransientSendError: UNAVAILABLE, DEADLINE_EXCEEDED and the like.
            PermanentSendError: INVALID_ARGUMENT, PERMISSION_DENIED, an unknown method or body.
            ItemsRejected: Some movements or counts came back REJECTED.

        """
        method = target.removeprefix(f"{inventory.SERVICE_NAME}/")
        try:
            if method == "ApplyMovements":
                await self._apply_movements(body)
            elif method == "SetCounts":
                await self._set_counts(body)
            else:
                raise PermanentSendError(f"no sender for {target}")
        except grpc.aio.AioRpcError as error:
            raise classify(error) from None
        except DecodeError:
            raise PermanentSendError(f"body of {idempotency_key} is not a {method} request") from None

    async def _apply_movements(self, body: bytes) -> None:
        request = inventory.pb.ApplyMovementsRequest.FromString(body)
        results = await self._client.apply_movements(request.movements, command=request.meta)
        rejected = [
            f"{result.idempotency_key}: {result.reason}"
            for result in results
            if result.outcome == inventory.pb.MOVEMENT_OUTCOME_REJECTED
        ]
        if rejected:
            raise ItemsRejected(rejected)

    async def _set_counts(self, body: bytes) -> None:
        request = inventory.pb.SetCountsRequest.FromString(body)
        results = await self._client.set_counts(request.counts, command=request.meta)
        rejected = [
            f"{result.idempotency_key}: {result.reason}"
            for result in results
            if result.outcome == inventory.pb.COUNT_OUTCOME_REJECTED
        ]
        if rejected:
            raise ItemsRejected(rejected)
