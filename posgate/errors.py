"""Domain errors: what went wrong, in terms callers can act on, without any transport in sight.

Services raise these from their handlers; the gRPC runtime turns each into a status code with
rich details (`google.rpc.ErrorInfo` carrying `reason` and `metadata`, `google.rpc.BadRequest`
carrying the field violations). The `reason` is part of the contract: clients branch on it, so
it is stable and UPPER_SNAKE; the `message` is for humans and may change.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import ClassVar

_REASON_PATTERN = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*$")
# google.rpc.ErrorInfo limits reasons to 63 characters.
_REASON_MAX_LENGTH = 63


@dataclass(frozen=True)
class FieldViolation:
    """One invalid field of a request.

    Attributes:
        field: Path to the field, dotted for nested messages (`lines[2].quantity`).
        description: Why the value is unacceptable, for humans.

    """

    field: str
    description: str


class DomainError(Exception):
    """Base of every error a service raises on purpose.

    Subclasses pick the category (and so the status code); `reason` names the exact case.

    Attributes:
        reason: Stable machine-readable cause, UPPER_SNAKE (`STOCK_INSUFFICIENT`).
        message: Human-readable explanation; never contains secrets.
        metadata: Extra key/value facts a client may act on (`{"sku": "A1"}`).
        violations: Invalid request fields, when the error is about input.

    """

    default_reason: ClassVar[str] = "DOMAIN_ERROR"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        metadata: Mapping[str, str] | None = None,
        violations: Sequence[FieldViolation] = (),
    ) -> None:
        """Create the error.

        Args:
            message: Human-readable explanation.
            reason: Stable UPPER_SNAKE cause; the class's `default_reason` when omitted.
            metadata: Extra facts for the client; keys and values are strings.
            violations: Invalid request fields.

        Raises:
            ValueError: If `reason` is not UPPER_SNAKE or is longer than 63 characters.

        """
        super().__init__(message)
        chosen = reason if reason is not None else self.default_reason
        if not _REASON_PATTERN.match(chosen) or len(chosen) > _REASON_MAX_LENGTH:
            raise ValueError(f"error reason must be UPPER_SNAKE and at most 63 characters: {chosen!r}")
        self.reason = chosen
        self.message = message
        self.metadata: Mapping[str, str] = MappingProxyType(dict(metadata or {}))
        self.violations: tuple[FieldViolation, ...] = tuple(violations)

    def __repr__(self) -> str:
        """Show the class, reason and message, which is what a log reader needs."""
        return f"{type(self).__name__}(reason={self.reason!r}, message={self.message!r})"


class InvalidArgument(DomainError):
    """The request itself is malformed, whatever the system's state."""

    default_reason = "INVALID_ARGUMENT"


class NotFound(DomainError):
    """A referenced entity does not exist."""

    default_reason = "NOT_FOUND"


class AlreadyExists(DomainError):
    """The entity the request would create exists already."""

    default_reason = "ALREADY_EXISTS"


class FailedPrecondition(DomainError):
    """The system is not in the state the request needs; retrying unchanged will not help."""

    default_reason = "FAILED_PRECONDITION"


class PermissionDenied(DomainError):
    """The caller is known but may not do this."""

    default_reason = "PERMISSION_DENIED"


class Unauthenticated(DomainError):
    """The caller could not be identified."""

    default_reason = "UNAUTHENTICATED"


class ResourceExhausted(DomainError):
    """A quota or capacity is used up (store capacity, rate limit)."""

    default_reason = "RESOURCE_EXHAUSTED"


class Unavailable(DomainError):
    """A dependency is down for now; the same request may succeed later."""

    default_reason = "UNAVAILABLE"


class Aborted(DomainError):
    """A concurrency conflict (version mismatch, lost race); retry from a fresh read."""

    default_reason = "ABORTED"


class Unimplemented(DomainError):
    """The server does not offer this method, or this form of it (a compressed request)."""

    default_reason = "UNIMPLEMENTED"
