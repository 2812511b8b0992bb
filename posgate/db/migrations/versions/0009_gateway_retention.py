"""gateway retention: indexes the pruner looks rows up by

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23 09:00:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("gw_dedupe_keys", schema=None) as batch_op:
        batch_op.create_index("ix_gw_dedupe_keys_created", ["created_at"], unique=False)
    with op.batch_alter_table("gw_failures", schema=None) as batch_op:
        batch_op.create_index("ix_gw_failures_command", ["command_id"], unique=False)
        batch_op.create_index("ix_gw_failures_raw_payload", ["raw_payload_id"], unique=False)
    with op.batch_alter_table("gw_import_jobs", schema=None) as batch_op:
        batch_op.create_index("ix_gw_import_jobs_raw_payload", ["raw_payload_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("gw_import_jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_gw_import_jobs_raw_payload")
    with op.batch_alter_table("gw_failures", schema=None) as batch_op:
        batch_op.drop_index("ix_gw_failures_raw_payload")
        batch_op.drop_index("ix_gw_failures_command")
    with op.batch_alter_table("gw_dedupe_keys", schema=None) as batch_op:
        batch_op.drop_index("ix_gw_dedupe_keys_created")
