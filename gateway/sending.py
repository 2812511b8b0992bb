"""What the dispatcher sends through: the sender ports and the errors that tell it what to do next."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from posgate.gateway.claims import Claimed


class SendError(Exception):
    """A send that did not succeed; subclasses say whether to retry."""


class TransientSendError(SendError):
    """The service may accept the same command later (unavailable, timed out)."""


class PermanentSendError(SendError):
    """The service refused the command; sending it again cannot help."""


class ItemsRejected(SendError):
    """The service took the command but rejected some of its items (recorded, not retried)."""

    def __init__(self, details: Sequence[str]) -> None:
        """`details` names each rejected item and the service's reason."""
        super().__init__("; ".join(details))
        self.details = tuple(details)


class CommandSender(Protocol):
    """Delivers one stored command to its service."""

    async def send(self, target: str, body: bytes, idempotency_key: str) -> None:
        """Send; raise `TransientSendError`, `PermanentSendError` or `ItemsRejected`."""
        ...


@runtime_checkable
class BatchSender(CommandSender, Protocol):
    """A sender that can deliver a round's commands for its service together."""

    async def send_batch(self, claimed: Sequence[Claimed]) -> list[Exception | None]:
        """Send all; one outcome per command, in order (None: delivered)."""
        ...
