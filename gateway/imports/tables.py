"""Tables of bulk imports: one row per upload (a job) and one per rejected row."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table, Text

from posgate.db.tables import Id, UtcDateTime, metadata


class JobState:
    """Lifecycle of an import job (`gw_import_jobs.state`)."""

    RUNNING = "running"
    COMPLETED = "completed"
    # The body ended early (client gone, database error); committed chunks stay valid.
    FAILED = "failed"


import_jobs = Table(
    "gw_import_jobs",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("provider", String(64), nullable=False),
    Column("tenant_id", String(255), nullable=False),
    Column("merchant_id", String(255), nullable=False),
    Column("format", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    # The raw-payload row that stands for the upload; the job's commands point at it.
    Column("raw_payload_id", BigInteger, nullable=False),
    Column("rows_total", Integer, nullable=False, default=0),
    Column("rows_ok", Integer, nullable=False, default=0),
    Column("rows_failed", Integer, nullable=False, default=0),
    Column("commands_written", Integer, nullable=False, default=0),
    Column("error", Text, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime, nullable=True),
)
Index("ix_gw_import_jobs_owner", import_jobs.c.provider, import_jobs.c.tenant_id, import_jobs.c.id)
# Retention keeps an upload's raw-payload record while its job exists.
Index("ix_gw_import_jobs_raw_payload", import_jobs.c.raw_payload_id)

import_errors = Table(
    "gw_import_errors",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("job_id", BigInteger, nullable=False),
    Column("row_number", Integer, nullable=False),
    Column("reason", String(64), nullable=False),
    Column("detail", Text, nullable=False, default=""),
    Column("raw", Text, nullable=False, default=""),
)
Index("ix_gw_import_errors_job_row", import_errors.c.job_id, import_errors.c.row_number)
