"""inventory change log: one row per store and transaction, not one per change

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-24 19:30:00.000000

`inv_changes` took a row per level change: for a bulk ApplyMovements call, a heap row and an
index entry per movement, about 5 µs of PostgreSQL's time and 2 µs of the server's each
(docs/benchmark-history.md, "A change log of blocks"). `inv_change_blocks` holds one row per store and
transaction: its changes' sequence range and the `inventory.stock_changed` event that carries
them, the outbox's own bytes (lz4 on PostgreSQL, as the outbox since 0011).

`inv_changes` stays, unread, for one release: the migration runs before the new release rolls
out (deploy/k8s/migrate-job.yaml), and replicas of the previous release must still commit
meanwhile. Its rows are not carried over. The change log only serves streams that resume from a
sequence number: a stream resuming from before the upgrade, or missing a change a replica of the
other release committed during the roll, is answered with a snapshot of its stores, as when its
changes have been pruned (docs/inventory-streams.md). Stock, ledger and sequences are
untouched. A later migration drops `inv_changes`.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_LZ4 = """
DO $$
BEGIN
    IF current_setting('server_version_num')::int >= 140000 THEN
        EXECUTE 'ALTER TABLE inv_change_blocks ALTER COLUMN body SET COMPRESSION lz4';
    END IF;
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'compression lz4 is not supported by this server: change-log bodies use the default';
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "inv_change_blocks",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("store_id", sa.String(length=64), nullable=False),
        sa.Column("last_sequence", sa.BigInteger(), nullable=False),
        sa.Column("first_sequence", sa.BigInteger(), nullable=False),
        sa.Column("committed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "store_id", "last_sequence", name=op.f("pk_inv_change_blocks")),
    )
    if op.get_context().dialect.name == "postgresql":
        op.execute(_LZ4)


def downgrade() -> None:
    op.drop_table("inv_change_blocks")
