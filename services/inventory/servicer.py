"""`posgate.inventory.v1.InventoryService`: proto → command → handler → proto, nothing more."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from posgate.contracts import inventory
from posgate.errors import InvalidArgument
from posgate.runtime.caller import current_caller, require_tenant
from posgate.services.inventory import convert, ledger, request_checks, reservations, thresholds
from posgate.services.inventory.batching import GroupCommitter
from posgate.services.inventory.domain import (
    MovementCommand,
    Rejection,
    check_count,
    check_movement,
)
from posgate.services.inventory.journal import Change, recorded_changes
from posgate.services.inventory.levels import query_levels, read_levels

pb = inventory.pb
MAX_POSITIONS = 10_000

WatchFn = Callable[[inventory.pb.WatchStockRequest], AsyncIterator[inventory.pb.WatchStockResponse]]
# The stream edge's form: the initial messages, then the live stream handed over (`StockHub`).
HandoffFn = Callable[[inventory.pb.WatchStockRequest], AsyncIterator[Any]]


@dataclass(frozen=True)
class InventoryApp:
    """What the servicer needs: the database, the group committer and the stock stream hub."""

    sessions: async_sessionmaker[AsyncSession]
    committer: GroupCommitter
    watch: WatchFn
    on_commit: Callable[[Sequence[Change]], None]
    watch_handoff: HandoffFn | None = None


def _provider(meta: Any) -> str:
    return str(meta.source.provider) if meta.HasField("source") else ""


class InventoryServicer(inventory.grpc_api.InventoryServiceServicer):
    """The inventory gRPC API."""

    def __init__(self, app: InventoryApp) -> None:
        """Serve `app`."""
        self._app = app

    async def ApplyMovements(
        self, request: inventory.pb.ApplyMovementsRequest, context: Any
    ) -> inventory.pb.ApplyMovementsResponse:
        """Apply each movement exactly once; invalid ones are rejected one by one."""
        request_checks.check_batch(len(request.movements), "movements")
        may_act_for = current_caller().may_act_for
        provider = _provider(request.meta)
        commands = [convert.movement_from_pb(m, provider) for m in request.movements]
        refused = dict(request_checks.rejections(commands, check_movement, may_act_for))
        valid = [command for index, command in enumerate(commands) if index not in refused]
        applied = await self._app.committer.submit(valid) if valid else []
        return _movements_response(commands, refused, applied)

    async def SetCounts(
        self, request: inventory.pb.SetCountsRequest, context: Any
    ) -> inventory.pb.SetCountsResponse:
        """Apply counts newer than the last one per position; report stale ones."""
        request_checks.check_batch(len(request.counts), "counts")
        may_act_for = current_caller().may_act_for
        provider = _provider(request.meta)
        commands = [convert.count_from_pb(c, provider) for c in request.counts]
        results: list[pb.CountResult | None] = [None] * len(commands)
        for index, rejection in request_checks.rejections(commands, check_count, may_act_for):
            results[index] = pb.CountResult(
                idempotency_key=commands[index].idempotency_key,
                outcome=pb.COUNT_OUTCOME_REJECTED,
                reason=rejection.reason,
            )
        valid = [i for i, result in enumerate(results) if result is None]
        if valid:
            async with self._app.sessions.begin() as session:
                applied = await ledger.set_counts(session, [commands[i] for i in valid], datetime.now(UTC))
            self._app.on_commit(recorded_changes(session))
            for index, result in zip(valid, applied, strict=True):
                results[index] = _count_result(commands[index].idempotency_key, result)
        return pb.SetCountsResponse(results=[r for r in results if r is not None])

    async def GetStock(
        self, request: inventory.pb.GetStockRequest, context: Any
    ) -> inventory.pb.GetStockResponse:
        """The level of one position (zero for a position never seen)."""
        position = convert.position_from_pb(request.key)
        request_checks.check_request_position(position, "key")
        async with self._app.sessions() as session:
            level = (await read_levels(session, [position])).get(position)
        if level is None:
            return pb.GetStockResponse(
                level=convert.empty_level(position.tenant_id, position.store_id, position.sku)
            )
        return pb.GetStockResponse(level=convert.level_to_pb(level))

    async def BatchGetStock(
        self, request: inventory.pb.BatchGetStockRequest, context: Any
    ) -> inventory.pb.BatchGetStockResponse:
        """Levels of many stores x SKUs of one tenant; positions never seen are absent."""
        if not request.tenant_id:
            raise InvalidArgument("tenant_id is required", reason="MISSING_TENANT")
        require_tenant(request.tenant_id)
        if len(request.store_ids) * max(len(request.skus), 1) > MAX_POSITIONS and request.skus:
            raise InvalidArgument(f"at most {MAX_POSITIONS} positions per call", reason="BATCH_TOO_LARGE")
        async with self._app.sessions() as session:
            levels = await query_levels(
                session, request.tenant_id, list(request.store_ids), list(request.skus)
            )
        return pb.BatchGetStockResponse(levels=[convert.level_to_pb(level) for level in levels])

    async def Reserve(
        self, request: inventory.pb.ReserveRequest, context: Any
    ) -> inventory.pb.ReserveResponse:
        """Reserve every line at one store, or nothing."""
        command = reservations.ReserveCommand(
            tenant_id=request.tenant_id,
            store_id=request.store_id,
            order_id=request.order_id,
            reservation_id=request.meta.idempotency_key,
            lines=tuple((line.sku, line.quantity) for line in request.lines),
            expires_at=convert.moment(request.expires_at, request.HasField("expires_at"))
            or datetime.now(UTC) + reservations.DEFAULT_TTL,
        )
        request_checks.raise_rejection(reservations.validate_reserve, command)
        async with self._app.sessions.begin() as session:
            result = await reservations.reserve(session, command, datetime.now(UTC))
        if result.reservation is None:
            return pb.ReserveResponse(
                outcome=pb.RESERVE_OUTCOME_INSUFFICIENT_STOCK,
                shortages=[
                    pb.Shortage(sku=s.sku, requested=s.requested, available=s.available)
                    for s in result.shortages
                ],
            )
        self._app.on_commit(recorded_changes(session))
        return pb.ReserveResponse(
            outcome=pb.RESERVE_OUTCOME_RESERVED, reservation=convert.reservation_to_pb(result.reservation)
        )

    async def Release(
        self, request: inventory.pb.ReleaseRequest, context: Any
    ) -> inventory.pb.ReleaseResponse:
        """Release an active reservation (idempotent)."""
        request_checks.check_reservation_ref(request.tenant_id, request.reservation_id)
        async with self._app.sessions.begin() as session:
            view = await reservations.release(
                session, request.tenant_id, request.reservation_id, datetime.now(UTC)
            )
        self._app.on_commit(recorded_changes(session))
        return pb.ReleaseResponse(reservation=convert.reservation_to_pb(view))

    async def Commit(self, request: inventory.pb.CommitRequest, context: Any) -> inventory.pb.CommitResponse:
        """Turn an active reservation into a sale (idempotent)."""
        request_checks.check_reservation_ref(request.tenant_id, request.reservation_id)
        async with self._app.sessions.begin() as session:
            view, levels = await reservations.commit(
                session, request.tenant_id, request.reservation_id, datetime.now(UTC)
            )
        self._app.on_commit(recorded_changes(session))
        return pb.CommitResponse(
            reservation=convert.reservation_to_pb(view),
            levels=[convert.level_to_pb(level) for level in levels],
        )

    async def SetThresholds(
        self, request: inventory.pb.SetThresholdsRequest, context: Any
    ) -> inventory.pb.SetThresholdsResponse:
        """Set low-stock and out-of-stock thresholds; a position already past one is announced."""
        request_checks.check_batch(len(request.thresholds), "thresholds")
        settings = [thresholds.from_pb(t) for t in request.thresholds]
        for index, setting in enumerate(settings):
            request_checks.check_request_position(setting.position, f"thresholds[{index}].key")
            request_checks.raise_rejection(thresholds.validate, setting)
        async with self._app.sessions.begin() as session:
            await thresholds.set_thresholds(session, settings, datetime.now(UTC))
        self._app.on_commit(recorded_changes(session))
        return pb.SetThresholdsResponse(thresholds=list(request.thresholds))

    def WatchStock(
        self, request: inventory.pb.WatchStockRequest, context: Any
    ) -> AsyncIterator[inventory.pb.WatchStockResponse]:
        """A snapshot, then every change, resumable by per-store sequence number."""
        request_checks.check_watch(request)
        return self._app.watch(request)

    def watch_stock_handoff(
        self, request: inventory.pb.WatchStockRequest, context: Any
    ) -> AsyncIterator[Any]:
        """`WatchStock` for the stream edge: same checks and messages, then the live stream handed over."""
        request_checks.check_watch(request)
        if self._app.watch_handoff is None:
            return self._app.watch(request)
        return self._app.watch_handoff(request)


def _movements_response(
    commands: Sequence[MovementCommand], refused: dict[int, Rejection], applied: Sequence[ledger.Applied]
) -> inventory.pb.ApplyMovementsResponse:
    """One result per command, in order: its rejection, or the next of `applied`.

    Filled in place: a reply to a bulk call holds thousands of results, and building each
    from keywords, then copying it into the reply, cost twice as much.
    """
    response = pb.ApplyMovementsResponse()
    add = response.results.add
    outcomes = iter(applied)
    for index, command in enumerate(commands):
        rejection = refused.get(index) if refused else None
        if rejection is not None:
            add(
                idempotency_key=command.idempotency_key,
                outcome=pb.MOVEMENT_OUTCOME_REJECTED,
                reason=rejection.reason,
            )
            continue
        result = next(outcomes)
        # Set one by one: upb takes keyword arguments more slowly than attribute settings.
        target = add()
        target.idempotency_key, target.outcome = command.idempotency_key, _MOVEMENT_OUTCOMES[result.outcome]
        if result.message is not None:
            target.level.CopyFrom(result.message)
        elif result.level is not None:
            convert.fill_level(target.level, result.level)
    return response


_MOVEMENT_OUTCOMES = {
    ledger.Outcome.APPLIED: pb.MOVEMENT_OUTCOME_APPLIED,
    ledger.Outcome.DUPLICATE: pb.MOVEMENT_OUTCOME_DUPLICATE,
}


def _count_result(key: str, result: ledger.Applied) -> inventory.pb.CountResult:
    outcome = pb.COUNT_OUTCOME_APPLIED if result.outcome is ledger.Outcome.APPLIED else pb.COUNT_OUTCOME_STALE
    level = convert.level_to_pb(result.level) if result.level else None
    return pb.CountResult(idempotency_key=key, outcome=outcome, reason=result.reason, level=level)
