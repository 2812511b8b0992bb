"""`CommandSender`s that call the internal services over gRPC through their typed clients.

`InventorySender.send_batch` merges the commands of one dispatch round that share a method and
a source into one call: the service answers per item, so each command still gets its own
outcome, and one call costs the service far less than many. A call refused as a whole for a
reason a command could have caused is sent again command by command, so one bad command never
takes the others down with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from posgate.clients.inventory import InventoryClient
from posgate.contracts import inventory
from posgate.gateway.claims import Claimed
from posgate.gateway.sending import ItemsRejected, PermanentSendError, SendError, TransientSendError

# Items per merged call; the service takes at most 10,000.
MERGED_ITEMS = 1000
_Request = inventory.pb.ApplyMovementsRequest | inventory.pb.SetCountsRequest

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
        _raise_rejected(_rejected(results, inventory.pb.MOVEMENT_OUTCOME_REJECTED))

    async def _set_counts(self, body: bytes) -> None:
        request = inventory.pb.SetCountsRequest.FromString(body)
        results = await self._client.set_counts(request.counts, command=request.meta)
        _raise_rejected(_rejected(results, inventory.pb.COUNT_OUTCOME_REJECTED))

    async def send_batch(self, claimed: Sequence[Claimed]) -> list[Exception | None]:
        """Send a round's commands, merged per (method, source provider); one outcome each."""
        outcomes: dict[int, Exception | None] = {}
        groups: dict[tuple[str, str], list[tuple[Claimed, _Request]]] = {}
        for command in claimed:
            request = _decode(command)
            if isinstance(request, SendError):
                outcomes[command.id] = request
                continue
            groups.setdefault((command.target, request.meta.source.provider), []).append((command, request))
        for members in groups.values():
            for chunk in _chunks(members):
                outcomes.update(await self._send_merged(chunk))
        return [outcomes[command.id] for command in claimed]

    async def _send_merged(self, chunk: list[tuple[Claimed, _Request]]) -> dict[int, Exception | None]:
        request = chunk[0][1]
        try:
            if isinstance(request, inventory.pb.ApplyMovementsRequest):
                movements = [m for _, r in chunk for m in _items(r)]
                results: Sequence[Any] = await self._client.apply_movements(movements, command=request.meta)
                rejected_outcome: int = inventory.pb.MOVEMENT_OUTCOME_REJECTED
            else:
                counts = [c for _, r in chunk for c in _items(r)]
                results = await self._client.set_counts(counts, command=request.meta)
                rejected_outcome = inventory.pb.COUNT_OUTCOME_REJECTED
        except grpc.aio.AioRpcError as error:
            failure = classify(error)
            if isinstance(failure, PermanentSendError) and len(chunk) > 1:
                # Refused as a whole: find the command at fault by sending each alone.
                return {command.id: await self._send_alone(command) for command, _ in chunk}
            return {command.id: failure for command, _ in chunk}
        outcomes: dict[int, Exception | None] = {}
        start = 0
        for command, member in chunk:
            end = start + len(_items(member))
            rejected = _rejected(results[start:end], rejected_outcome)
            outcomes[command.id] = ItemsRejected(rejected) if rejected else None
            start = end
        return outcomes

    async def _send_alone(self, command: Claimed) -> Exception | None:
        try:
            await self.send(command.target, command.body, command.idempotency_key)
        except SendError as error:
            return error
        return None


def _decode(command: Claimed) -> _Request | SendError:
    method = command.target.removeprefix(f"{inventory.SERVICE_NAME}/")
    try:
        if method == "ApplyMovements":
            return inventory.pb.ApplyMovementsRequest.FromString(command.body)
        if method == "SetCounts":
            return inventory.pb.SetCountsRequest.FromString(command.body)
    except DecodeError:
        return PermanentSendError(f"body of {command.idempotency_key} is not a {method} request")
    return PermanentSendError(f"no sender for {command.target}")


def _items(request: _Request) -> Sequence[Any]:
    if isinstance(request, inventory.pb.ApplyMovementsRequest):
        return request.movements
    return request.counts


def _chunks(members: list[tuple[Claimed, _Request]]) -> list[list[tuple[Claimed, _Request]]]:
    chunks: list[list[tuple[Claimed, _Request]]] = [[]]
    size = 0
    for member in members:
        items = len(_items(member[1]))
        if chunks[-1] and size + items > MERGED_ITEMS:
            chunks.append([])
            size = 0
        chunks[-1].append(member)
        size += items
    return chunks


def _rejected(results: Sequence[Any], rejected_outcome: int) -> list[str]:
    return [f"{r.idempotency_key}: {r.reason}" for r in results if r.outcome == rejected_outcome]


def _raise_rejected(rejected: list[str]) -> None:
    if rejected:
        raise ItemsRejected(rejected)
