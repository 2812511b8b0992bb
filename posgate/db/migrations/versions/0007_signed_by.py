"""gateway raw payloads remember the tenant whose credential verified them

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 05:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: rows stored before this revision do not know their signer and are not replayable.
    with op.batch_alter_table("gw_raw_payloads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("signed_by_tenant", sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("gw_raw_payloads", schema=None) as batch_op:
        batch_op.drop_column("signed_by_tenant")
