"""Who the work in progress is done for: the authenticated caller and the tenants it may touch.

The gRPC auth interceptor makes the caller current for the duration of each RPC; services and
domain code read it with `current_caller()` or check it with `require_tenant(tenant_id)`. This
module imports nothing of grpc so that code below the transport can use it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass

from posgate.errors import PermissionDenied
from posgate.runtime.context_vars import reset_quietly

TENANT_FORBIDDEN = "TENANT_FORBIDDEN"


@dataclass(frozen=True)
class Caller:
    """An authenticated principal, named without its credentials.

    Attributes:
        name: Stable, secret-free name for logs (`token#2`, `cert:inventory-client`).
        tenants: The tenants it may act for; None means every tenant (internal services).

    """

    name: str
    tenants: frozenset[str] | None

    def may_act_for(self, tenant_id: str) -> bool:
        """Return whether this caller may read or change data of `tenant_id`."""
        return self.tenants is None or tenant_id in self.tenants


# What `current_caller()` answers outside any authenticated RPC: dev-mode servers (which check
# no credentials), unit tests of services and scripts. It may act for every tenant, like the
# unauthenticated dev server it stands for.
ANONYMOUS_DEV_CALLER = Caller("anonymous-dev", None)

_current: ContextVar[Caller | None] = ContextVar("posgate_caller", default=None)


def current_caller() -> Caller:
    """Return the caller of the current RPC.

    Outside an authenticated RPC (dev mode, unit tests, background jobs) this is
    `ANONYMOUS_DEV_CALLER`, which may act for every tenant.
    """
    return _current.get() or ANONYMOUS_DEV_CALLER


@contextmanager
def caller_scope(caller: Caller) -> Iterator[Caller]:
    """Make `caller` current inside the block (the auth interceptor does this per RPC).

    Args:
        caller: The principal to expose through `current_caller`.

    Yields:
        The same caller, for convenience.

    """
    token = enter_caller(caller)
    try:
        yield caller
    finally:
        leave_caller(token)


def enter_caller(caller: Caller) -> Token[Caller | None]:
    """Make `caller` current until `leave_caller` (the scope without a generator, per RPC)."""
    return _current.set(caller)


def leave_caller(token: Token[Caller | None]) -> None:
    """Undo `enter_caller`."""
    reset_quietly(_current, token)


def require_tenant(tenant_id: str) -> None:
    """Refuse the work unless the current caller may act for `tenant_id`.

    Args:
        tenant_id: The tenant whose data the request reads or changes.

    Raises:
        PermissionDenied: With reason `TENANT_FORBIDDEN`; the message names the tenant only,
            never the caller's credentials.

    """
    if not current_caller().may_act_for(tenant_id):
        raise PermissionDenied(
            f"the caller may not act for tenant {tenant_id!r}",
            reason=TENANT_FORBIDDEN,
            metadata={"tenant_id": tenant_id},
        )
