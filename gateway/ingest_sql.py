"""The ingest batch's statements (`posgate.db.bulk`): one per table, whatever the batch size.

On PostgreSQL each binds its columns as arrays: one prepared statement with a cached plan for
every batch, where multi-row `VALUES` lists and `IN` lists were a new statement for each batch
size, planned afresh at every bind. SQLite takes the equivalent SQLAlchemy statements.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import orjson
from sqlalchemy import select, text, tuple_
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from posgate.db import raw
from posgate.db.bulk import Arrays, Statement, is_postgres
from posgate.db.raw import PositionalSql
from posgate.gateway.mapping_cache import version_rows
from posgate.gateway.tables import commands, dedupe_keys, raw_payloads

RAW_COLUMNS = (
    "provider",
    "topic",
    "url",
    "headers",
    "body",
    "received_at",
    "signed_by_tenant",
    "outcome",
    "merchant_id",
    "dedupe_key",
    "tenant_id",
    "store_id",
)
# Ids ascend in the order the rows were inserted, which is the order given.
INSERT_RAW = Statement.unnest(
    raw_payloads,
    RAW_COLUMNS,
    "RETURNING id",
    sqlite.insert(raw_payloads).returning(raw_payloads.c.id, sort_by_parameter_order=True),
)

CLAIM_COLUMNS = ("provider", "dedupe_key", "raw_payload_id", "created_at")
# ON CONFLICT waits for a concurrent inserter of the same key and then does nothing.
CLAIM_KEYS = Statement.unnest(
    dedupe_keys,
    CLAIM_COLUMNS,
    "ON CONFLICT (provider, dedupe_key) DO NOTHING RETURNING provider, dedupe_key",
    sqlite.insert(dedupe_keys)
    .on_conflict_do_nothing(index_elements=["provider", "dedupe_key"])
    .returning(dedupe_keys.c.provider, dedupe_keys.c.dedupe_key),
)

COMMAND_COLUMNS = (
    "raw_payload_id",
    "target",
    "idempotency_key",
    "tenant_id",
    "store_id",
    "body",
    "state",
    "attempts",
    "next_attempt_at",
    "created_at",
)
INSERT_COMMANDS = Statement.unnest(
    commands,
    COMMAND_COLUMNS,
    "ON CONFLICT (idempotency_key) DO NOTHING RETURNING id, idempotency_key",
    sqlite.insert(commands)
    .on_conflict_do_nothing(index_elements=["idempotency_key"])
    .returning(commands.c.id, commands.c.idempotency_key),
)

# The look-ups a batch needs before deciding, in one round trip: the claims its keys already
# have (kind 0) and the mapping versions of its merchants (kind 1).
_LOOK_UP = PositionalSql.of(
    text(
        "SELECT 0, d.provider, d.dedupe_key, d.raw_payload_id FROM gw_dedupe_keys AS d"
        " JOIN unnest(CAST(:providers AS text[]), CAST(:keys AS text[])) AS wanted(provider, dedupe_key)"
        " ON d.provider = wanted.provider AND d.dedupe_key = wanted.dedupe_key"
        " UNION ALL SELECT 1, v.provider, v.merchant_id, v.version FROM gw_mapping_versions AS v"
        " JOIN unnest(CAST(:version_providers AS text[]), CAST(:merchants AS text[]))"
        " AS wanted(provider, merchant_id)"
        " ON v.provider = wanted.provider AND v.merchant_id = wanted.merchant_id"
    )
)

Slot = tuple[str, str]


def columns(rows: Sequence[Mapping[str, object]], names: Sequence[str]) -> Arrays:
    """`rows` column-wise, in the order of `names`."""
    return {name: [row[name] for row in rows] for name in names}


def raw_arrays(session: AsyncSession, rows: Sequence[Mapping[str, object]]) -> Arrays:
    """Raw payload rows column-wise; on PostgreSQL the headers as JSON text (`json[]`)."""
    arrays = dict(columns(rows, RAW_COLUMNS))
    if is_postgres(session):
        arrays["headers"] = [orjson.dumps(headers).decode() for headers in arrays["headers"]]
    return arrays


async def look_up(
    session: AsyncSession, wanted: Sequence[Slot], merchants: Sequence[Slot]
) -> tuple[dict[Slot, int], dict[Slot, int]]:
    """On PostgreSQL, claims and mapping versions in one round trip.

    Returns:
        The first delivery of each claimed (provider, key) of `wanted`; the stored version of
        each of `merchants` (rows of `gw_mapping_versions`) that has one.

    """
    parameters = {
        "providers": [p for p, _ in wanted],
        "keys": [k for _, k in wanted],
        "version_providers": [p for p, _ in merchants],
        "merchants": [m for _, m in merchants],
    }
    found: tuple[dict[Slot, int], dict[Slot, int]] = ({}, {})
    for kind, provider, name, value in await raw.fetch(session, _LOOK_UP, parameters):
        found[kind][(provider, name)] = int(value)
    return found


async def first_deliveries(session: AsyncSession, wanted: Sequence[Slot]) -> dict[Slot, int]:
    """The stored delivery that claimed each (provider, key) first, for those claimed.

    PostgreSQL takes `look_up` instead, which reads the mapping versions in the same round trip.
    """
    if not wanted:
        return {}
    query = select(dedupe_keys.c.provider, dedupe_keys.c.dedupe_key, dedupe_keys.c.raw_payload_id).where(
        tuple_(dedupe_keys.c.provider, dedupe_keys.c.dedupe_key).in_(wanted)
    )
    return {(row[0], row[1]): int(row[2]) for row in await session.execute(query)}


async def look_up_batch(
    session: AsyncSession, slots: Iterable[tuple[str, str] | None], merchants: Iterable[tuple[str, str]]
) -> tuple[dict[tuple[str, str], int], dict[tuple[str, str], int] | None]:
    """The stored delivery that claimed each (provider, key) first, for those claimed.

    On PostgreSQL also, in the same round trip, the mapping versions `merchants`' snapshots are
    kept under (None elsewhere: `MappingCache.snapshots` reads them itself).
    """
    wanted = sorted({slot for slot in slots if slot is not None})
    if is_postgres(session):
        return await look_up(session, wanted, version_rows(merchants))
    return await first_deliveries(session, wanted), None


async def existing_commands(session: AsyncSession, keys: set[str]) -> dict[str, int]:
    """The ids of the stored commands among idempotency `keys`."""
    if not keys:
        return {}
    query = select(commands.c.id, commands.c.idempotency_key).where(
        commands.c.idempotency_key.in_(sorted(keys))
    )
    return {row.idempotency_key: int(row.id) for row in await session.execute(query)}
