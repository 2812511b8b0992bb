"""Storage of import jobs: create, record a chunk (commands, errors, counters), finish, read."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import RowMapping, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from posgate.gateway.adapters.base import CanonicalCommand
from posgate.gateway.dedupe import storable_headers
from posgate.gateway.imports.lines import Row
from posgate.gateway.imports.tables import JobState, import_errors, import_jobs
from posgate.gateway.ingest_store import DISPATCHABLE_SERVICES
from posgate.gateway.tables import CommandState, MappingKind, Outcome, commands, mappings, raw_payloads

IMPORT_TOPIC = "import"
# Commands per INSERT: their bodies are large, and SQLite bounds the parameters per statement.
_COMMANDS_PER_STATEMENT = 50


@dataclass(frozen=True, slots=True)
class JobView:
    """What the progress endpoint reports."""

    id: int
    provider: str
    tenant_id: str
    merchant_id: str
    format: str
    state: str
    rows_total: int
    rows_ok: int
    rows_failed: int
    commands_written: int
    error: str | None
    created_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class ErrorView:
    """One rejected row."""

    row_number: int
    reason: str
    detail: str
    raw: str


@dataclass(slots=True)
class Progress:
    """Counters of a running job; `committed` rows are those of the chunks handed to writing."""

    rows_total: int = 0
    rows_failed: int = 0
    committed: int = 0

    def take(self, rejected: Sequence[Row]) -> Progress:
        """Close a chunk whose rejected rows are `rejected`: the counters to write with it."""
        self.rows_failed += len(rejected)
        self.committed = self.rows_total
        return Progress(self.rows_total, self.rows_failed, self.committed)


async def merchants_of(session: AsyncSession, provider: str, tenant_id: str) -> list[str]:
    """The provider's merchant ids mapped to `tenant_id`, sorted."""
    query = select(mappings.c.merchant_id).where(
        mappings.c.provider == provider,
        mappings.c.kind == MappingKind.TENANT,
        mappings.c.canonical_id == tenant_id,
    )
    return sorted(str(row) for row in (await session.scalars(query)).all())


async def create_job(
    session: AsyncSession,
    *,
    provider: str,
    tenant_id: str,
    merchant_id: str,
    body_format: str,
    url: str,
    headers: Mapping[str, str],
    now: datetime,
) -> tuple[int, int]:
    """Store the upload's raw-payload record and its running job: (job id, raw-payload id).

    The body itself is not kept (it may be gigabytes): the raw record holds a descriptor of
    the upload, and the job's commands point at it so the dispatcher can trace them.
    """
    raw_id = await _upload_record(
        session,
        provider=provider,
        tenant_id=tenant_id,
        merchant_id=merchant_id,
        body_format=body_format,
        url=url,
        headers=headers,
        now=now,
    )
    job = insert(import_jobs).values(
        provider=provider,
        tenant_id=tenant_id,
        merchant_id=merchant_id,
        format=body_format,
        state=JobState.RUNNING,
        raw_payload_id=raw_id,
        rows_total=0,
        rows_ok=0,
        rows_failed=0,
        commands_written=0,
        created_at=now,
    )
    return int((await session.execute(job.returning(import_jobs.c.id))).scalar_one()), raw_id


async def record_chunk(
    session: AsyncSession,
    *,
    job_id: int,
    raw_payload_id: int,
    canonical: Sequence[CanonicalCommand],
    rejected: Sequence[Row],
    progress: Progress,
    now: datetime,
) -> int:
    """Write a chunk's commands (existing keys skipped), errors and counters (caller commits).

    Returns how many commands were new.
    """
    written = await _insert_commands(session, [_command_row(c, raw_payload_id, now) for c in canonical])
    if rejected:
        await session.execute(
            insert(import_errors),
            [
                {
                    "job_id": job_id,
                    "row_number": row.number,
                    "reason": row.reason,
                    "detail": _storable(row.detail),
                    "raw": _storable(row.raw),
                }
                for row in rejected
            ],
        )
    await session.execute(
        update(import_jobs)
        .where(import_jobs.c.id == job_id)
        .values(
            rows_total=progress.rows_total,
            rows_ok=progress.rows_total - progress.rows_failed,
            rows_failed=progress.rows_failed,
            commands_written=import_jobs.c.commands_written + written,
        )
    )
    return written


async def _upload_record(
    session: AsyncSession,
    *,
    provider: str,
    tenant_id: str,
    merchant_id: str,
    body_format: str,
    url: str,
    headers: Mapping[str, str],
    now: datetime,
) -> int:
    descriptor = {"seller_import": {"format": body_format, "merchant_id": merchant_id}}
    raw = insert(raw_payloads).values(
        provider=provider,
        topic=IMPORT_TOPIC,
        url=url,
        headers=storable_headers(headers),
        body=json.dumps(descriptor).encode(),
        received_at=now,
        merchant_id=merchant_id,
        tenant_id=tenant_id,
        outcome=Outcome.ACCEPTED,
    )
    return int((await session.execute(raw.returning(raw_payloads.c.id))).scalar_one())


async def _insert_commands(session: AsyncSession, rows: list[dict[str, object]]) -> int:
    """Insert command rows whose key is not stored yet; returns how many were new."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    written = 0
    for start in range(0, len(rows), _COMMANDS_PER_STATEMENT):
        statement = dialect.insert(commands).values(rows[start : start + _COMMANDS_PER_STATEMENT])
        statement = statement.on_conflict_do_nothing(index_elements=["idempotency_key"])
        written += len((await session.execute(statement.returning(commands.c.id))).all())
    return written


def _storable(text: str) -> str:
    # PostgreSQL text cannot hold NUL, which a bad row may well contain.
    return text.replace("\x00", "\ufffd")


def _command_row(command: CanonicalCommand, raw_id: int, now: datetime) -> dict[str, object]:
    service = command.target.split("/", 1)[0]
    return {
        "raw_payload_id": raw_id,
        "target": command.target,
        "idempotency_key": command.idempotency_key,
        "tenant_id": command.tenant_id,
        "store_id": command.store_id,
        "body": command.message.SerializeToString(deterministic=True),
        "state": CommandState.PENDING if service in DISPATCHABLE_SERVICES else CommandState.AWAITING_SERVICE,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }


async def finish_job(
    session: AsyncSession, job_id: int, state: str, now: datetime, error: str | None = None
) -> None:
    """Mark the job completed or failed (the caller commits)."""
    await session.execute(
        update(import_jobs)
        .where(import_jobs.c.id == job_id)
        .values(state=state, finished_at=now, error=error)
    )


async def get_job(session: AsyncSession, job_id: int, provider: str, tenant_id: str) -> JobView | None:
    """The job if it exists and belongs to (provider, tenant)."""
    query = select(import_jobs).where(
        import_jobs.c.id == job_id, import_jobs.c.provider == provider, import_jobs.c.tenant_id == tenant_id
    )
    row = (await session.execute(query)).mappings().one_or_none()
    return None if row is None else _view(row)


async def list_jobs(session: AsyncSession, provider: str, tenant_id: str, limit: int) -> list[JobView]:
    """The tenant's most recent jobs at the provider, newest first."""
    query = (
        select(import_jobs)
        .where(import_jobs.c.provider == provider, import_jobs.c.tenant_id == tenant_id)
        .order_by(import_jobs.c.id.desc())
        .limit(limit)
    )
    return [_view(row) for row in (await session.execute(query)).mappings().all()]


def _view(row: RowMapping) -> JobView:
    return JobView(**{name: row[name] for name in JobView.__dataclass_fields__})


async def list_errors(session: AsyncSession, job_id: int, offset: int, limit: int) -> list[ErrorView]:
    """The job's rejected rows in row order."""
    query = (
        select(
            import_errors.c.row_number, import_errors.c.reason, import_errors.c.detail, import_errors.c.raw
        )
        .where(import_errors.c.job_id == job_id)
        .order_by(import_errors.c.row_number, import_errors.c.id)
        .offset(offset)
        .limit(limit)
    )
    return [ErrorView(*row) for row in (await session.execute(query)).all()]
