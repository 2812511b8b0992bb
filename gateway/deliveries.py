"""A delivery's state through the synchronous path, and what became of it.

`Delivery` holds what needs no database (signature, parse); `Verdict` what one attempt to
store it decided (duplicate, mapped tenant, commands or failure); `IngestResult` is answered.
A batch that fails is retried delivery by delivery from fresh verdicts, so nothing a rolled
back transaction decided leaks into the retry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from posgate.gateway.adapters.base import Adapter, AdapterError, CanonicalCommand, InboundRequest, VendorEvent
from posgate.gateway.mappings import MappingEntry
from posgate.gateway.tables import FailureClass, Outcome


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What became of one delivery.

    Attributes:
        outcome: `accepted`, `duplicate` or `failed`.
        raw_payload_id: The stored delivery.
        command_ids: The event's commands (accepted only).
        failure_class: `auth`, `mapping`, `validation`, `processing` (failed) or `duplicate`.
        reason: Stable snake_case reason of the failure or duplicate; never contains secrets.
        failure_id: The failure row recorded for it, if any.
        new_command_ids: Those of `command_ids` this call stored (others existed already).

    """

    outcome: str
    raw_payload_id: int
    command_ids: tuple[int, ...] = ()
    failure_class: str | None = None
    reason: str = ""
    failure_id: int | None = None
    new_command_ids: tuple[int, ...] = ()


@dataclass(slots=True)
class Delivery:
    """One delivery after the checks that need no database: signature, topic, parse.

    Attributes:
        request: The delivery as received.
        adapter: Its provider's adapter.
        now: When the pipeline handles it (signature windows, row times).
        signed_by: The tenant whose credential verified it; None if none did.
        raw_id: Its stored row, for a replay; None until the pipeline stores it.
        deduplicate: False for a replay, which re-runs a stored delivery on purpose.
        event: The parsed event, unless `error`.
        key: Its de-duplication key, unless `error`.
        error: Why it failed before reaching the database, if it did.

    """

    request: InboundRequest
    adapter: Adapter
    now: datetime
    signed_by: str | None = None
    raw_id: int | None = None
    deduplicate: bool = True
    event: VendorEvent | None = None
    key: str | None = None
    error: AdapterError | None = None

    @property
    def merchant(self) -> str | None:
        """The vendor merchant the event belongs to, once parsed."""
        return None if self.event is None else self.event.identity.merchant_id

    @property
    def dedupe_slot(self) -> tuple[str, str] | None:
        """(provider, key): deliveries sharing one are the same event."""
        return None if self.key is None else (self.request.provider, self.key)


@dataclass(slots=True)
class Verdict:
    """What one attempt decided about a delivery.

    Attributes:
        delivery: The delivery.
        duplicate_of: The stored delivery that claimed the same event first, if one did.
        tenant: The tenant its merchant is mapped to, once mapped.
        canonical: Its commands, when accepted.
        error: Why it failed (from the delivery, or from mapping and validation).
        raw_id: Its stored row, once stored.
        command_ids: Its commands' ids, once stored; `created` those this attempt stored.
        failure_id: Its failure row, once stored.
        created_mappings: SKU mappings its account's `create` policy made for it.

    """

    delivery: Delivery
    duplicate_of: int | None = None
    tenant: str | None = None
    canonical: list[CanonicalCommand] = field(default_factory=list)
    error: AdapterError | None = None
    raw_id: int | None = None
    command_ids: tuple[int, ...] = ()
    created: tuple[int, ...] = ()
    failure_id: int | None = None
    created_mappings: list[MappingEntry] = field(default_factory=list)

    def __post_init__(self) -> None:
        """Start from the delivery's own failure and stored row."""
        self.error = self.error or self.delivery.error
        self.raw_id = self.raw_id or self.delivery.raw_id

    @property
    def merchant(self) -> str:
        """The vendor merchant ('' before parsing)."""
        return self.delivery.merchant or ""

    @property
    def outcome(self) -> str:
        """`failed`, `duplicate` or `accepted`."""
        if self.error is not None:
            return Outcome.FAILED
        return Outcome.DUPLICATE if self.duplicate_of is not None else Outcome.ACCEPTED

    @property
    def store_id(self) -> str | None:
        """The one canonical store its commands address, if exactly one."""
        stores = {command.store_id for command in self.canonical}
        return stores.pop() if len(stores) == 1 else None

    def result(self) -> IngestResult:
        """The answer for the caller (after storing)."""
        assert self.raw_id is not None  # noqa: S101 - results exist only for stored deliveries
        if self.error is not None:
            failure = self.error
            return IngestResult(
                Outcome.FAILED, self.raw_id, (), failure.failure_class, failure.reason, self.failure_id
            )
        if self.duplicate_of is not None:
            return IngestResult(
                Outcome.DUPLICATE,
                self.raw_id,
                (),
                FailureClass.DUPLICATE,
                "duplicate_delivery",
                self.failure_id,
            )
        return IngestResult(Outcome.ACCEPTED, self.raw_id, self.command_ids, new_command_ids=self.created)
