"""Tables shared by every component: the transactional outbox, the inbox and dead letters.

Each service adds its own tables to the same `metadata` in its own module; Alembic
migrations in `posgate/db/migrations` create all of them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    TypeDecorator,
)
from sqlalchemy.engine import Dialect

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Refuse naive datetimes; store UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given for a UTC timestamp column")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        """Attach UTC to what SQLite hands back naive."""
        if value is None:
            return None
        moment: datetime = value
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# BigInteger ids autoincrement on PostgreSQL; SQLite only autoincrements INTEGER primary keys.
Id = BigInteger().with_variant(Integer(), "sqlite")

outbox = Table(
    "event_outbox",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("event_id", String(64), nullable=False, unique=True),
    Column("event_type", String(128), nullable=False),
    Column("routing_key", String(255), nullable=False),
    Column("partition_key", String(255), nullable=True),
    Column("headers", JSON, nullable=False, default=dict),
    Column("body", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("published_at", DateTime(timezone=True), nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
)
Index("ix_event_outbox_unpublished", outbox.c.published_at, outbox.c.id)

inbox = Table(
    "event_inbox",
    metadata,
    Column("consumer", String(128), nullable=False),
    Column("message_id", String(64), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("consumer", "message_id"),
)

dead_letters = Table(
    "event_dead_letters",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("consumer", String(128), nullable=False),
    Column("message_id", String(64), nullable=False),
    Column("routing_key", String(255), nullable=False),
    Column("reason", Text, nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("failed_at", DateTime(timezone=True), nullable=False),
)
