"""A stored command leased to one dispatcher: what it needs to send and settle the command.

A dispatcher leases commands either by claiming due rows (`posgate.gateway.dispatch`) or,
in the process that stored them, by writing them already leased and being handed them after
the commit (`posgate.gateway.ingestor`). Either way, when the lease ends unsettled (the
process died), the rows are due again and any dispatcher claims them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from sqlalchemy import Row


@dataclass(frozen=True, slots=True)
class Claimed:
    """One leased command.

    Attributes:
        id: Its `gw_commands` row.
        target: Full gRPC method.
        body: The serialized request.
        idempotency_key: The command's key (also inside `body`).
        attempts: Sends so far, this one included.
        tenant_id: Canonical tenant.
        store_id: Canonical store, or ''.
        raw_payload_id: The delivery it came from.
        provider: That delivery's provider.
        topic: That delivery's topic.

    """

    id: int
    target: str
    body: bytes
    idempotency_key: str
    attempts: int
    tenant_id: str
    store_id: str
    raw_payload_id: int
    provider: str
    topic: str

    @classmethod
    def from_row(cls, row: Row[tuple[object, ...]]) -> Claimed:
        """A claim from a `gw_commands` row joined with its payload's provider and topic.

        The row holds the attempts before this claim; the claim counts itself.
        """
        values = row._mapping
        return cls(
            id=int(values["id"]),
            target=str(values["target"]),
            body=bytes(values["body"]),
            idempotency_key=str(values["idempotency_key"]),
            attempts=int(values["attempts"]) + 1,
            tenant_id=str(values["tenant_id"]),
            store_id=str(values["store_id"] or ""),
            raw_payload_id=int(values["raw_payload_id"]),
            provider=str(values["provider"]),
            topic=str(values["topic"]),
        )


class LeasingDispatcher(Protocol):
    """A dispatcher that takes commands its process stored already leased, without a claim."""

    @property
    def lease(self) -> timedelta:
        """How long a lease keeps a command from other dispatchers."""
        ...

    def hand_over(self, claimed: list[Claimed]) -> None:
        """Send `claimed` soon; they are leased to this process."""
        ...
