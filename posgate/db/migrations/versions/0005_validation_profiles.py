"""gateway validation profiles

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 05:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gw_validation_profiles",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("tenant", sa.String(length=255), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gw_validation_profiles")),
        sa.UniqueConstraint("provider", "tenant", name="uq_gw_validation_profiles_provider_tenant"),
    )


def downgrade() -> None:
    op.drop_table("gw_validation_profiles")
