"""event outbox: event bodies compressed with lz4 instead of pglz (PostgreSQL)

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-24 13:40:00.000000

An `inventory.stock_changed` event of a bulk ApplyMovements call carries every change of one
store: about 16 KB for 60 changes. PostgreSQL compresses values over 2 KB before storing them,
with pglz by default, and inserting such a body cost about 180 µs against about 90 µs with lz4
(docs/benchmark-history.md, "Outbox bodies in lz4"). A server built without lz4 keeps pglz. SQLite
has no such setting: nothing changes there.
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def _set_compression(method: str) -> str:
    """`SET COMPRESSION` exists since PostgreSQL 14; `feature_not_supported` is a build without lz4."""
    return f"""
DO $$
BEGIN
    IF current_setting('server_version_num')::int >= 140000 THEN
        EXECUTE 'ALTER TABLE event_outbox ALTER COLUMN body SET COMPRESSION {method}';
    END IF;
EXCEPTION WHEN feature_not_supported THEN
    RAISE NOTICE 'compression {method} is not supported by this server: event bodies stay as they were';
END
$$
"""


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(_set_compression("lz4"))


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(_set_compression("default"))
