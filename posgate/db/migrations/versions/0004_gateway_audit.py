"""gateway audit of refused webhook requests

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 04:45:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gw_audit",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("topic", sa.String(length=64), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("client", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gw_audit")),
    )
    with op.batch_alter_table("gw_audit", schema=None) as batch_op:
        batch_op.create_index("ix_gw_audit_provider_occurred", ["provider", "occurred_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("gw_audit", schema=None) as batch_op:
        batch_op.drop_index("ix_gw_audit_provider_occurred")
    op.drop_table("gw_audit")
