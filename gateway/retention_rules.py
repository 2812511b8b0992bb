"""When a stored gateway row may be deleted: one SQL condition per table, given the cutoff.

A row goes only when nothing can still need it (docs/gateway-retention.md):

- a command once it is finished, `dispatched`, or `dead` with a resolved failure naming it,
  its last activity (stored, last send, dispatch) is older than the cutoff, and every failure
  naming it goes too. `pending` (leased and retrying included), `awaiting_service` and
  `awaiting_fetch` commands never go, however old;
- a failure once it is resolved, it and its last replay are older than the cutoff, and the
  command it names is gone. Open failures are the operators' work queue and never go;
- a raw payload once it is older than the cutoff and no command, failure or import job
  names it. A de-duplication key naming it does not keep it.

Each condition is complete by itself: the pruner selects a range of ids and deletes with the
condition in the DELETE itself, so a row that changed since (a replay requeued its command)
is judged as it is then. De-duplication keys and audit rows go by age alone.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, and_, not_, or_, select

from posgate.gateway.imports.tables import import_jobs
from posgate.gateway.tables import CommandState, commands, failures, raw_payloads


def failure_expired(cutoff: datetime) -> ColumnElement[bool]:
    """A resolved failure created, and last replayed if ever, before `cutoff`."""
    return and_(
        failures.c.resolved.is_(True),
        failures.c.created_at < cutoff,
        or_(failures.c.replayed_at.is_(None), failures.c.replayed_at < cutoff),
    )


def command_removable(cutoff: datetime) -> ColumnElement[bool]:
    """A finished command idle since before `cutoff` whose failures, if any, expired too."""
    naming = failures.c.command_id == commands.c.id
    resolved = select(failures.c.id).where(naming, failures.c.resolved.is_(True)).exists()
    # Open, or resolved but recent: the command stays with it for the operator to inspect.
    kept = select(failures.c.id).where(naming, not_(failure_expired(cutoff))).exists()
    return and_(
        or_(
            commands.c.state == CommandState.DISPATCHED,
            and_(commands.c.state == CommandState.DEAD, resolved),
        ),
        commands.c.created_at < cutoff,
        # The end of its last lease: when it was last sent, or requeued by a replay.
        commands.c.next_attempt_at < cutoff,
        or_(commands.c.dispatched_at.is_(None), commands.c.dispatched_at < cutoff),
        not_(kept),
    )


def failure_removable(cutoff: datetime) -> ColumnElement[bool]:
    """An expired failure whose command, if it names one, is gone already."""
    command = select(commands.c.id).where(commands.c.id == failures.c.command_id).exists()
    return and_(failure_expired(cutoff), or_(failures.c.command_id.is_(None), not_(command)))


def raw_payload_removable(cutoff: datetime) -> ColumnElement[bool]:
    """A delivery received before `cutoff` that no command, failure or import job names."""
    raw_id = raw_payloads.c.id
    return and_(
        raw_payloads.c.received_at < cutoff,
        not_(select(commands.c.id).where(commands.c.raw_payload_id == raw_id).exists()),
        not_(select(failures.c.id).where(failures.c.raw_payload_id == raw_id).exists()),
        not_(select(import_jobs.c.id).where(import_jobs.c.raw_payload_id == raw_id).exists()),
    )
