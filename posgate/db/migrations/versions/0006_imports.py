"""gateway bulk import jobs and per-row errors

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 04:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "gw_import_jobs",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=255), nullable=False),
        sa.Column("merchant_id", sa.String(length=255), nullable=False),
        sa.Column("format", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("raw_payload_id", sa.BigInteger(), nullable=False),
        sa.Column("rows_total", sa.Integer(), nullable=False),
        sa.Column("rows_ok", sa.Integer(), nullable=False),
        sa.Column("rows_failed", sa.Integer(), nullable=False),
        sa.Column("commands_written", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gw_import_jobs")),
    )
    with op.batch_alter_table("gw_import_jobs", schema=None) as batch_op:
        batch_op.create_index("ix_gw_import_jobs_owner", ["provider", "tenant_id", "id"], unique=False)

    op.create_table(
        "gw_import_errors",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("job_id", sa.BigInteger(), nullable=False),
        sa.Column("row_number", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gw_import_errors")),
    )
    with op.batch_alter_table("gw_import_errors", schema=None) as batch_op:
        batch_op.create_index("ix_gw_import_errors_job_row", ["job_id", "row_number"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("gw_import_errors", schema=None) as batch_op:
        batch_op.drop_index("ix_gw_import_errors_job_row")
    op.drop_table("gw_import_errors")
    with op.batch_alter_table("gw_import_jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_gw_import_jobs_owner")
    op.drop_table("gw_import_jobs")
