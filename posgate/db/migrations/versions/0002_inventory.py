"""inventory: stock, ledger, change log, reservations

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 03:42:21.287236
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inv_changes",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("store_id", sa.String(length=64), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("sku", sa.String(length=128), nullable=False),
        sa.Column("on_hand", sa.BigInteger(), nullable=False),
        sa.Column("reserved", sa.BigInteger(), nullable=False),
        sa.Column("delta", sa.BigInteger(), nullable=False),
        sa.Column("cause", sa.String(length=16), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("count_version", sa.BigInteger(), nullable=False),
        sa.Column("committed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "store_id", "sequence", name=op.f("pk_inv_changes")),
    )
    op.create_table(
        "inv_movements",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("store_id", sa.String(length=64), nullable=False),
        sa.Column("sku", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("delta", sa.BigInteger(), nullable=False),
        sa.Column("reference", sa.String(length=200), nullable=False),
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inv_movements")),
        sa.UniqueConstraint("tenant_id", "idempotency_key", name=op.f("uq_inv_movements_tenant_id")),
    )
    with op.batch_alter_table("inv_movements", schema=None) as batch_op:
        batch_op.create_index("ix_inv_movements_position", ["tenant_id", "store_id", "sku"], unique=False)

    op.create_table(
        "inv_reservation_lines",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("reservation_id", sa.String(length=200), nullable=False),
        sa.Column("sku", sa.String(length=128), nullable=False),
        sa.Column("quantity", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_inv_reservation_lines_quantity_positive")),
        sa.PrimaryKeyConstraint("tenant_id", "reservation_id", "sku", name=op.f("pk_inv_reservation_lines")),
    )
    op.create_table(
        "inv_reservations",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("reservation_id", sa.String(length=200), nullable=False),
        sa.Column("store_id", sa.String(length=64), nullable=False),
        sa.Column("order_id", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "reservation_id", name=op.f("pk_inv_reservations")),
    )
    with op.batch_alter_table("inv_reservations", schema=None) as batch_op:
        batch_op.create_index("ix_inv_reservations_expiry", ["state", "expires_at"], unique=False)

    op.create_table(
        "inv_stock",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("store_id", sa.String(length=64), nullable=False),
        sa.Column("sku", sa.String(length=128), nullable=False),
        sa.Column("on_hand", sa.BigInteger(), nullable=False),
        sa.Column("reserved", sa.BigInteger(), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("count_version", sa.BigInteger(), nullable=False),
        sa.Column("low_threshold", sa.BigInteger(), nullable=True),
        sa.Column("out_threshold", sa.BigInteger(), nullable=False),
        sa.Column("alert", sa.String(length=8), nullable=False),
        sa.Column("negative", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("reserved >= 0", name=op.f("ck_inv_stock_reserved_not_negative")),
        sa.PrimaryKeyConstraint("tenant_id", "store_id", "sku", name=op.f("pk_inv_stock")),
    )
    op.create_table(
        "inv_store_sequences",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("store_id", sa.String(length=64), nullable=False),
        sa.Column("last_sequence", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "store_id", name=op.f("pk_inv_store_sequences")),
    )


def downgrade() -> None:
    op.drop_table("inv_store_sequences")
    op.drop_table("inv_stock")
    with op.batch_alter_table("inv_reservations", schema=None) as batch_op:
        batch_op.drop_index("ix_inv_reservations_expiry")

    op.drop_table("inv_reservations")
    op.drop_table("inv_reservation_lines")
    with op.batch_alter_table("inv_movements", schema=None) as batch_op:
        batch_op.drop_index("ix_inv_movements_position")

    op.drop_table("inv_movements")
    op.drop_table("inv_changes")
