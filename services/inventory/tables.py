"""Tables owned by the inventory service.

`inv_stock` holds the current level per (tenant, store, SKU); `inv_movements` is the ledger
and the idempotency record of every delta; `inv_change_blocks` is the per-store, gap-free
ordered log of level changes that `WatchStock` replays from, one row per store and
transaction; `inv_store_sequences` allocates the per-store sequence numbers (its row lock
orders commits per store).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Index,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    Table,
)

from posgate.db.tables import UtcDateTime, metadata

TENANT = 64
STORE = 64
SKU = 128
KEY = 200

stock = Table(
    "inv_stock",
    metadata,
    Column("tenant_id", String(TENANT), nullable=False),
    Column("store_id", String(STORE), nullable=False),
    Column("sku", String(SKU), nullable=False),
    Column("on_hand", BigInteger, nullable=False),
    Column("reserved", BigInteger, nullable=False),
    Column("sequence", BigInteger, nullable=False),
    Column("count_version", BigInteger, nullable=False),
    Column("low_threshold", BigInteger, nullable=True),
    Column("out_threshold", BigInteger, nullable=False),
    # Which threshold band the position is in ("ok", "low", "out"): events fire on crossings.
    Column("alert", String(8), nullable=False),
    # On-hand went below zero through a register sale: applied, flagged for a count.
    Column("negative", Boolean, nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "store_id", "sku"),
    CheckConstraint("reserved >= 0", name="reserved_not_negative"),
)

store_sequences = Table(
    "inv_store_sequences",
    metadata,
    Column("tenant_id", String(TENANT), nullable=False),
    Column("store_id", String(STORE), nullable=False),
    Column("last_sequence", BigInteger, nullable=False),
    PrimaryKeyConstraint("tenant_id", "store_id"),
)

# The ledger, written once per movement and read by its key only: no other index (each one
# cost every movement of a bulk batch about 1.5 µs of PostgreSQL's time).
movements = Table(
    "inv_movements",
    metadata,
    Column("tenant_id", String(TENANT), nullable=False),
    Column("idempotency_key", String(KEY), nullable=False),
    Column("store_id", String(STORE), nullable=False),
    Column("sku", String(SKU), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("delta", BigInteger, nullable=False),
    Column("reference", String(KEY), nullable=False),
    Column("provider", String(64), nullable=False),
    Column("occurred_at", UtcDateTime(), nullable=True),
    Column("recorded_at", UtcDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "idempotency_key"),
)

# The change log: one row per store and transaction, whose changes are numbered
# first_sequence..last_sequence without gaps. `body` is the `inventory.stock_changed` event that
# announced them (`journal.record`), the outbox's bytes: a row per change cost every movement
# of a bulk batch about 5 µs of PostgreSQL's time and 2 µs of the server's.
change_blocks = Table(
    "inv_change_blocks",
    metadata,
    Column("tenant_id", String(TENANT), nullable=False),
    Column("store_id", String(STORE), nullable=False),
    Column("last_sequence", BigInteger, nullable=False),
    Column("first_sequence", BigInteger, nullable=False),
    Column("committed_at", UtcDateTime(), nullable=False),
    Column("body", LargeBinary, nullable=False),
    PrimaryKeyConstraint("tenant_id", "store_id", "last_sequence"),
)

# The change log before migration 0012, a row per change. Nothing here reads or writes it; it
# stays one release so that replicas of the previous release, still running while a new one
# rolls out, can commit. A later migration drops it.
legacy_changes = Table(
    "inv_changes",
    metadata,
    Column("tenant_id", String(TENANT), nullable=False),
    Column("store_id", String(STORE), nullable=False),
    Column("sequence", BigInteger, nullable=False),
    Column("sku", String(SKU), nullable=False),
    Column("on_hand", BigInteger, nullable=False),
    Column("reserved", BigInteger, nullable=False),
    Column("delta", BigInteger, nullable=False),
    Column("cause", String(16), nullable=False),
    Column("event_id", String(64), nullable=False),
    Column("count_version", BigInteger, nullable=False),
    Column("committed_at", UtcDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "store_id", "sequence"),
)

reservations = Table(
    "inv_reservations",
    metadata,
    Column("tenant_id", String(TENANT), nullable=False),
    Column("reservation_id", String(KEY), nullable=False),
    Column("store_id", String(STORE), nullable=False),
    Column("order_id", String(KEY), nullable=False),
    Column("state", String(12), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
    PrimaryKeyConstraint("tenant_id", "reservation_id"),
)
Index("ix_inv_reservations_expiry", reservations.c.state, reservations.c.expires_at)

reservation_lines = Table(
    "inv_reservation_lines",
    metadata,
    Column("tenant_id", String(TENANT), nullable=False),
    Column("reservation_id", String(KEY), nullable=False),
    Column("sku", String(SKU), nullable=False),
    Column("quantity", BigInteger, nullable=False),
    PrimaryKeyConstraint("tenant_id", "reservation_id", "sku"),
    CheckConstraint("quantity > 0", name="quantity_positive"),
)
