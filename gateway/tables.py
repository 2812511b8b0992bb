"""The gateway's tables: raw deliveries, de-duplication keys, commands, failures, mappings.

Every delivery is kept as received (minus credential headers) so that any failure can be
inspected and replayed through the current adapter and mappings.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from posgate.db.tables import Id, UtcDateTime, metadata


class Outcome:
    """What became of a raw delivery (`gw_raw_payloads.outcome`)."""

    RECEIVED = "received"
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    FAILED = "failed"


class CommandState:
    """Lifecycle of a stored command (`gw_commands.state`)."""

    PENDING = "pending"
    DISPATCHED = "dispatched"
    DEAD = "dead"
    # Its target service has no dispatcher yet; kept until one arrives, never dropped.
    AWAITING_SERVICE = "awaiting_service"
    # The webhook named the entity but not its content (Square orders, catalog versions): the
    # fetcher (`posgate.gateway.command_fetch`) completes it from the vendor's API, then it awaits service.
    AWAITING_FETCH = "awaiting_fetch"


class FailureClass:
    """The failure classes of the design's gateway pipeline."""

    AUTH = "auth"
    MAPPING = "mapping"
    VALIDATION = "validation"
    PROCESSING = "processing"
    DUPLICATE = "duplicate"


class UnmappedSkuPolicy:
    """What a delivery naming an unmapped vendor item does (`gw_mapping_policies.unmapped_sku`)."""

    # Held as a `mapping` failure until an operator maps the item and replays it.
    REVIEW = "review"
    # The vendor item id becomes the canonical SKU: a mapping is created and the delivery accepted.
    CREATE = "create"


class MappingKind:
    """What a mapping row translates (`gw_mappings.kind`)."""

    TENANT = "tenant"
    STORE = "store"
    SKU = "sku"


raw_payloads = Table(
    "gw_raw_payloads",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("provider", String(64), nullable=False),
    Column("topic", String(64), nullable=False),
    Column("url", Text, nullable=False),
    Column("headers", JSON, nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    Column("merchant_id", String(255), nullable=True),
    Column("tenant_id", String(255), nullable=True),
    Column("store_id", String(255), nullable=True),
    Column("dedupe_key", String(128), nullable=True),
    # The tenant whose credential verified the delivery; a replay may write only for it.
    Column("signed_by_tenant", String(255), nullable=True),
    Column("outcome", String(16), nullable=False),
)
Index("ix_gw_raw_payloads_provider_received", raw_payloads.c.provider, raw_payloads.c.received_at)

# One row per accepted event: the first delivery claims its key; later ones are duplicates.
dedupe_keys = Table(
    "gw_dedupe_keys",
    metadata,
    Column("provider", String(64), nullable=False),
    Column("dedupe_key", String(128), nullable=False),
    Column("raw_payload_id", BigInteger, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("provider", "dedupe_key", name="uq_gw_dedupe_keys_provider_key"),
)
# Retention deletes the oldest keys first (`posgate.gateway.retention`).
Index("ix_gw_dedupe_keys_created", dedupe_keys.c.created_at)

commands = Table(
    "gw_commands",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("raw_payload_id", BigInteger, nullable=False),
    Column("target", String(255), nullable=False),
    Column("idempotency_key", String(255), nullable=False, unique=True),
    Column("tenant_id", String(255), nullable=False),
    Column("store_id", String(255), nullable=False, default=""),
    Column("body", LargeBinary, nullable=False),
    Column("state", String(24), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UtcDateTime, nullable=False),
    Column("last_error", Text, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("dispatched_at", UtcDateTime, nullable=True),
)
Index("ix_gw_commands_due", commands.c.state, commands.c.next_attempt_at, commands.c.id)
Index("ix_gw_commands_raw_payload", commands.c.raw_payload_id)

failures = Table(
    "gw_failures",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("raw_payload_id", BigInteger, nullable=True),
    Column("command_id", BigInteger, nullable=True),
    Column("failure_class", String(16), nullable=False),
    Column("reason", String(128), nullable=False),
    Column("detail", Text, nullable=False, default=""),
    Column("provider", String(64), nullable=False),
    Column("topic", String(64), nullable=False, default=""),
    Column("tenant_id", String(255), nullable=True),
    Column("store_id", String(255), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("replayed_at", UtcDateTime, nullable=True),
    Column("resolved", Boolean, nullable=False, default=False),
)
Index("ix_gw_failures_open", failures.c.resolved, failures.c.failure_class, failures.c.created_at)
# Retention keeps a command or raw payload while a failure names it; these answer that.
Index("ix_gw_failures_command", failures.c.command_id)
Index("ix_gw_failures_raw_payload", failures.c.raw_payload_id)

mappings = Table(
    "gw_mappings",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("provider", String(64), nullable=False),
    Column("merchant_id", String(255), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("vendor_id", String(255), nullable=False),
    Column("canonical_id", String(255), nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("provider", "merchant_id", "kind", "vendor_id", name="uq_gw_mappings_vendor_id"),
)

# One row per (provider, merchant) whose mappings ever changed; every change bumps `version`
# in the same transaction, so a process can keep a merchant's mappings cached and check them
# with one small read (`posgate.gateway.mapping_cache`).
mapping_versions = Table(
    "gw_mapping_versions",
    metadata,
    Column("provider", String(64), primary_key=True),
    Column("merchant_id", String(255), primary_key=True),
    Column("version", BigInteger, nullable=False),
)

# Per channel (`merchant_id` '') and per account: the account's row wins; none means review.
mapping_policies = Table(
    "gw_mapping_policies",
    metadata,
    Column("provider", String(64), primary_key=True),
    Column("merchant_id", String(255), primary_key=True),
    Column("unmapped_sku", String(16), nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)
