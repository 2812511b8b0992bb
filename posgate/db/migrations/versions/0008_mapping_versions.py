"""gateway mapping versions (processes cache mappings) and unmapped-SKU policies

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 06:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gw_mapping_versions",
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("merchant_id", sa.String(length=255), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("provider", "merchant_id", name=op.f("pk_gw_mapping_versions")),
    )
    # Merchants mapped before this revision get a version row, so caches start from one.
    op.execute(
        "INSERT INTO gw_mapping_versions (provider, merchant_id, version) "
        "SELECT DISTINCT provider, merchant_id, 1 FROM gw_mappings"
    )

    op.create_table(
        "gw_mapping_policies",
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("merchant_id", sa.String(length=255), nullable=False),
        sa.Column("unmapped_sku", sa.String(length=16), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("provider", "merchant_id", name=op.f("pk_gw_mapping_policies")),
    )


def downgrade() -> None:
    op.drop_table("gw_mapping_policies")
    op.drop_table("gw_mapping_versions")
