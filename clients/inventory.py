"""A typed async client for `posgate.inventory.v1.InventoryService`.

Every state-changing call carries an idempotency key, so the channel retries UNAVAILABLE
transparently (gRPC retry policy); `StockWatcher` keeps a `WatchStock` stream alive across
disconnects by resuming from the last sequence number it saw per store.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta

import grpc

from posgate.contracts import inventory
from posgate.contracts.common import pb as common_pb
from posgate.contracts.common import timestamp

pb = inventory.pb

_RETRY_POLICY = json.dumps(
    {
        "methodConfig": [
            {
                "name": [{"service": inventory.SERVICE_NAME}],
                "retryPolicy": {
                    "maxAttempts": 5,
                    "initialBackoff": "0.05s",
                    "maxBackoff": "2s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    }
)
CHANNEL_OPTIONS = (("grpc.service_config", _RETRY_POLICY), ("grpc.enable_retries", 1))


def meta(
    idempotency_key: str | None = None, *, provider: str = "internal", tenant_id: str = ""
) -> common_pb.CommandMeta:
    """Command metadata with a fresh idempotency key unless one is given."""
    return common_pb.CommandMeta(
        idempotency_key=idempotency_key or str(uuid.uuid4()),
        source=common_pb.Source(provider=provider, tenant_id=tenant_id),
    )


class InventoryClient:
    """Calls the inventory service; one instance per channel, safe to share between tasks."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        *,
        token: str | None = None,
        timeout_s: float = 10.0,
        stream_channel: grpc.aio.Channel | None = None,
    ) -> None:
        """Use `channel`; `token` is sent as `authorization: Bearer <token>` on every call.

        With `stream_channel` (to the service's stream edge, `POSGATE_INVENTORY_STREAM_PORT`),
        `watch_stock` streams through it and every other call through `channel`.
        """
        self._channel = channel
        self._stream_channel = stream_channel
        self._stub = inventory.grpc_api.InventoryServiceStub(channel)
        self._stream_stub = (
            inventory.grpc_api.InventoryServiceStub(stream_channel) if stream_channel else self._stub
        )
        self._metadata: tuple[tuple[str, str], ...] = (("authorization", f"Bearer {token}"),) if token else ()
        self._timeout_s = timeout_s

    @property
    def channel(self) -> grpc.aio.Channel:
        """The channel of every call but `watch_stock` (for callers sending pre-serialised requests)."""
        return self._channel

    @classmethod
    def connect(
        cls,
        target: str,
        *,
        token: str | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        stream_target: str | None = None,
    ) -> InventoryClient:
        """Open a channel (TLS when `credentials` are given) to `target` (`host:port`).

        `target` may be the stream edge (`POSGATE_INVENTORY_STREAM_PORT`), which serves every
        method and costs the service less per call. `stream_target` sends only `WatchStock` to
        the edge, on a channel of its own, when `target` is the gRPC port.
        """
        stream_channel = _channel(stream_target, credentials) if stream_target else None
        return cls(_channel(target, credentials), token=token, stream_channel=stream_channel)

    async def close(self) -> None:
        """Close the channels."""
        await self._channel.close(None)
        if self._stream_channel is not None:
            await self._stream_channel.close(None)

    async def apply_movements(
        self, movements: Sequence[inventory.pb.Movement], *, command: common_pb.CommandMeta | None = None
    ) -> list[inventory.pb.MovementResult]:
        """Apply deltas; one result per movement: applied, duplicate, or rejected with a reason."""
        request = pb.ApplyMovementsRequest(meta=command or meta(), movements=movements)
        response = await self._stub.ApplyMovements(request, metadata=self._metadata, timeout=self._timeout_s)
        return list(response.results)

    async def set_counts(
        self, counts: Sequence[inventory.pb.StockCount], *, command: common_pb.CommandMeta | None = None
    ) -> list[inventory.pb.CountResult]:
        """Apply absolute counts; older ones come back stale."""
        request = pb.SetCountsRequest(meta=command or meta(), counts=counts)
        response = await self._stub.SetCounts(request, metadata=self._metadata, timeout=self._timeout_s)
        return list(response.results)

    async def get_stock(self, tenant_id: str, store_id: str, sku: str) -> inventory.pb.StockLevel:
        """The level of one position (zeros for one never seen)."""
        key = pb.StockKey(tenant_id=tenant_id, store_id=store_id, sku=sku)
        response = await self._stub.GetStock(
            pb.GetStockRequest(key=key), metadata=self._metadata, timeout=self._timeout_s
        )
        return response.level

    async def batch_get_stock(
        self, tenant_id: str, store_ids: Sequence[str] = (), skus: Sequence[str] = ()
    ) -> list[inventory.pb.StockLevel]:
        """Levels of many stores x SKUs of one tenant."""
        request = pb.BatchGetStockRequest(tenant_id=tenant_id, store_ids=store_ids, skus=skus)
        response = await self._stub.BatchGetStock(request, metadata=self._metadata, timeout=self._timeout_s)
        return list(response.levels)

    async def reserve(
        self,
        tenant_id: str,
        store_id: str,
        lines: Mapping[str, int],
        *,
        order_id: str = "",
        idempotency_key: str | None = None,
        ttl: timedelta = timedelta(minutes=15),
    ) -> inventory.pb.ReserveResponse:
        """Reserve every line at one store, or nothing; the key is the reservation id."""
        expires = datetime.now(UTC) + ttl
        request = pb.ReserveRequest(
            meta=meta(idempotency_key, tenant_id=tenant_id),
            tenant_id=tenant_id,
            store_id=store_id,
            order_id=order_id,
            lines=[pb.ReservationLine(sku=sku, quantity=qty) for sku, qty in lines.items()],
            expires_at=timestamp(expires),
        )
        return await self._stub.Reserve(request, metadata=self._metadata, timeout=self._timeout_s)

    async def release(self, tenant_id: str, reservation_id: str) -> inventory.pb.Reservation:
        """Release a reservation (idempotent)."""
        request = pb.ReleaseRequest(
            meta=meta(tenant_id=tenant_id), tenant_id=tenant_id, reservation_id=reservation_id
        )
        response = await self._stub.Release(request, metadata=self._metadata, timeout=self._timeout_s)
        return response.reservation

    async def commit(self, tenant_id: str, reservation_id: str) -> inventory.pb.CommitResponse:
        """Turn a reservation into a sale (idempotent)."""
        request = pb.CommitRequest(
            meta=meta(tenant_id=tenant_id), tenant_id=tenant_id, reservation_id=reservation_id
        )
        return await self._stub.Commit(request, metadata=self._metadata, timeout=self._timeout_s)

    async def set_thresholds(self, thresholds: Sequence[inventory.pb.Threshold]) -> None:
        """Set low-stock and out-of-stock thresholds."""
        request = pb.SetThresholdsRequest(meta=meta(), thresholds=thresholds)
        await self._stub.SetThresholds(request, metadata=self._metadata, timeout=self._timeout_s)

    async def watch_stock(
        self,
        tenant_id: str,
        *,
        store_ids: Sequence[str] = (),
        skus: Sequence[str] = (),
        resume_after: Mapping[str, int] | None = None,
    ) -> AsyncIterator[inventory.pb.WatchStockResponse]:
        """One `WatchStock` stream: a snapshot (or a replay), then every change."""
        request = pb.WatchStockRequest(
            tenant_id=tenant_id, store_ids=store_ids, skus=skus, resume_after=dict(resume_after or {})
        )
        call = self._stream_stub.WatchStock(request, metadata=self._metadata)
        try:
            async for update in call:
                yield update
        finally:
            # A consumer that stops iterating ends the RPC instead of leaving it open.
            call.cancel()


def _channel(target: str, credentials: grpc.ChannelCredentials | None) -> grpc.aio.Channel:
    if credentials is None:
        return grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS)
    return grpc.aio.secure_channel(target, credentials, options=CHANNEL_OPTIONS)


class StockWatcher:
    """Follows a tenant's stock across disconnects, resuming after the last sequence per store."""

    def __init__(
        self,
        client: InventoryClient,
        tenant_id: str,
        *,
        store_ids: Sequence[str] = (),
        skus: Sequence[str] = (),
        retry_delay_s: float = 0.5,
    ) -> None:
        """Watch `tenant_id`, optionally narrowed to stores and SKUs."""
        self._client = client
        self._tenant_id = tenant_id
        self._store_ids = store_ids
        self._skus = skus
        self._retry_delay_s = retry_delay_s
        self.last_sequences: dict[str, int] = {}

    async def updates(self) -> AsyncIterator[inventory.pb.WatchStockResponse]:
        """Every snapshot chunk and change, reconnecting on UNAVAILABLE or RESOURCE_EXHAUSTED."""
        while True:
            stream = self._client.watch_stock(
                self._tenant_id, store_ids=self._store_ids, skus=self._skus, resume_after=self.last_sequences
            )
            try:
                async for update in stream:
                    self._remember(update)
                    yield update
                return
            except grpc.aio.AioRpcError as error:
                if error.code() not in {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED}:
                    raise
            await asyncio.sleep(self._retry_delay_s)

    def _remember(self, update: inventory.pb.WatchStockResponse) -> None:
        if update.HasField("change"):
            level = update.change.level
            self.last_sequences[level.key.store_id] = level.sequence
        else:
            for store_id, sequence in update.snapshot.store_sequences.items():
                self.last_sequences[store_id] = max(sequence, self.last_sequences.get(store_id, 0))
