"""Checks of an inventory call's request before anything is applied: sizes, tenants, positions.

A refusal raises `InvalidArgument` (or, for another tenant's data, the caller check's
PERMISSION_DENIED); the servicer (`posgate.services.inventory.servicer`) runs these first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from posgate.contracts import inventory
from posgate.errors import FieldViolation, InvalidArgument
from posgate.runtime.caller import current_caller, require_tenant
from posgate.services.inventory.domain import Rejection, TenantCheck, check_position

ItemT = TypeVar("ItemT")
MAX_BATCH = 10_000


def check_batch(size: int, field: str) -> None:
    """A repeated field of a call holds at least one item and at most `MAX_BATCH`."""
    if size == 0:
        raise InvalidArgument(
            f"{field} is empty", reason="EMPTY_BATCH", violations=[FieldViolation(field, "empty")]
        )
    if size > MAX_BATCH:
        raise InvalidArgument(
            f"at most {MAX_BATCH} {field} per call",
            reason="BATCH_TOO_LARGE",
            violations=[FieldViolation(field, f"{size} > {MAX_BATCH}")],
        )


def check_watch(request: inventory.pb.WatchStockRequest) -> None:
    """A stock watch names its tenant, one the caller may act for."""
    if not request.tenant_id:
        raise InvalidArgument("tenant_id is required", reason="MISSING_TENANT")
    require_tenant(request.tenant_id)


def rejections(
    commands: Sequence[ItemT], check: Callable[[ItemT, TenantCheck], None], may_act_for: TenantCheck
) -> list[tuple[int, Rejection]]:
    """Each item `check` refuses, by position; the others are applied."""
    refused: list[tuple[int, Rejection]] = []
    for index, command in enumerate(commands):
        try:
            check(command, may_act_for)
        except Rejection as rejection:
            refused.append((index, rejection))
    return refused


def check_request_position(position: Any, field: str) -> None:
    """A position in a request is well formed and of a tenant the caller may act for."""
    try:
        check_position(position, lambda _tenant: True)
    except Rejection as rejection:
        raise InvalidArgument(
            f"{field}: {rejection.code}",
            reason=rejection.code.upper(),
            violations=[FieldViolation(field, rejection.code)],
        ) from rejection
    require_tenant(position.tenant_id)


def check_reservation_ref(tenant_id: str, reservation_id: str) -> None:
    """A reservation is named by tenant and id, and the caller may act for that tenant."""
    if not tenant_id or not reservation_id:
        raise InvalidArgument("tenant_id and reservation_id are required", reason="MISSING_RESERVATION")
    require_tenant(tenant_id)


def raise_rejection(validate: Callable[..., None], command: Any) -> None:
    """Run a validator; its `Rejection` becomes INVALID_ARGUMENT or PERMISSION_DENIED."""
    try:
        validate(command, current_caller().may_act_for)
    except Rejection as rejection:
        if rejection.status == "PERMISSION_DENIED":
            require_tenant(
                getattr(command, "tenant_id", getattr(getattr(command, "position", None), "tenant_id", ""))
            )
        raise InvalidArgument(
            rejection.code.replace("_", " "),
            reason=rejection.code.upper(),
            violations=[FieldViolation(rejection.code, rejection.reason)],
        ) from rejection
