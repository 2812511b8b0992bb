"""gateway pipeline tables

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 04:21:18.871140
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gw_commands",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("raw_payload_id", sa.BigInteger(), nullable=False),
        sa.Column("target", sa.String(length=255), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("tenant_id", sa.String(length=255), nullable=False),
        sa.Column("store_id", sa.String(length=255), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("state", sa.String(length=24), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gw_commands")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_gw_commands_idempotency_key")),
    )
    with op.batch_alter_table("gw_commands", schema=None) as batch_op:
        batch_op.create_index("ix_gw_commands_due", ["state", "next_attempt_at", "id"], unique=False)
        batch_op.create_index("ix_gw_commands_raw_payload", ["raw_payload_id"], unique=False)

    op.create_table(
        "gw_dedupe_keys",
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("dedupe_key", sa.String(length=128), nullable=False),
        sa.Column("raw_payload_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("provider", "dedupe_key", name="uq_gw_dedupe_keys_provider_key"),
    )
    op.create_table(
        "gw_failures",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("raw_payload_id", sa.BigInteger(), nullable=True),
        sa.Column("command_id", sa.BigInteger(), nullable=True),
        sa.Column("failure_class", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=128), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("topic", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=255), nullable=True),
        sa.Column("store_id", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("replayed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gw_failures")),
    )
    with op.batch_alter_table("gw_failures", schema=None) as batch_op:
        batch_op.create_index(
            "ix_gw_failures_open", ["resolved", "failure_class", "created_at"], unique=False
        )

    op.create_table(
        "gw_mappings",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("merchant_id", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("vendor_id", sa.String(length=255), nullable=False),
        sa.Column("canonical_id", sa.String(length=255), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gw_mappings")),
        sa.UniqueConstraint("provider", "merchant_id", "kind", "vendor_id", name="uq_gw_mappings_vendor_id"),
    )
    op.create_table(
        "gw_raw_payloads",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("topic", sa.String(length=64), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("merchant_id", sa.String(length=255), nullable=True),
        sa.Column("tenant_id", sa.String(length=255), nullable=True),
        sa.Column("store_id", sa.String(length=255), nullable=True),
        sa.Column("dedupe_key", sa.String(length=128), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gw_raw_payloads")),
    )
    with op.batch_alter_table("gw_raw_payloads", schema=None) as batch_op:
        batch_op.create_index(
            "ix_gw_raw_payloads_provider_received", ["provider", "received_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("gw_raw_payloads", schema=None) as batch_op:
        batch_op.drop_index("ix_gw_raw_payloads_provider_received")

    op.drop_table("gw_raw_payloads")
    op.drop_table("gw_mappings")
    with op.batch_alter_table("gw_failures", schema=None) as batch_op:
        batch_op.drop_index("ix_gw_failures_open")

    op.drop_table("gw_failures")
    op.drop_table("gw_dedupe_keys")
    with op.batch_alter_table("gw_commands", schema=None) as batch_op:
        batch_op.drop_index("ix_gw_commands_raw_payload")
        batch_op.drop_index("ix_gw_commands_due")

    op.drop_table("gw_commands")
