"""A batch of new, accepted deliveries stored by one statement on PostgreSQL, which commits alone.

The general path (`posgate.gateway.ingest_store.store`) writes raw payloads, de-duplication
claims and commands with one statement each inside a transaction: five round trips with BEGIN
and COMMIT. Each round trip wakes the database backend and then the gateway again, and at a few
hundred webhooks a second, when most batches hold one delivery, those wake-ups were the larger
part of the gateway's CPU. The common batch (every delivery new and accepted, no mapping to
create) needs no Python between its writes, so one statement makes them all and commits alone:

- raw payload ids are drawn first, so the claims can name them before the rows exist;
- a claim lost to a concurrent transaction makes its delivery a duplicate in the same statement:
  its raw row is stored as `duplicate` and its commands are not written;
- commands are written for the other deliveries, keys sorted (the lock order of every writer).

What the statement cannot decide is done after it, read-only or small: the delivery that won a
lost claim and the duplicate's failure row, and the ids of commands another delivery stored
first. A crash between the statement and that failure row loses only the row (the delivery is
stored as `duplicate`, and the vendor, unanswered, retries and is told so again).

The rows travel as three JSON parameters (deliveries, commands, assumed mapping versions) read by
`json_to_recordset`, bodies in hex. Bound as 27 arrays, one per column, building and encoding
the parameters cost the gateway about 210 µs of CPU for a batch of one delivery and 440 µs for
twenty; as JSON (orjson), about 100 µs and 220 µs. PostgreSQL's execution is unchanged at one
delivery and about 9 µs longer per delivery at twenty (where the gateway's core, not the
database's, is the full one). Bodies as a separate `bytea[]` joined by position cost it about
60 µs more per batch than hex inside the JSON.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import cast

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from posgate.db import raw
from posgate.db.raw import PositionalSql
from posgate.gateway import ingest_sql
from posgate.gateway.deliveries import Verdict
from posgate.gateway.tables import Outcome

_DELIVERY = {
    "provider": "text",
    "topic": "text",
    "url": "text",
    "headers": "json",
    "body": "text",  # hex, as are commands' bodies: `decode(body, 'hex')` in the statement
    "received_at": "timestamptz",
    "signed_by_tenant": "text",
    "outcome": "text",
    "merchant_id": "text",
    "dedupe_key": "text",
    "tenant_id": "text",
    "store_id": "text",
    "deduplicate": "boolean",
    "claimed_at": "timestamptz",
}
_COMMAND = {
    "delivery": "bigint",
    "target": "text",
    "idempotency_key": "text",
    "tenant_id": "text",
    "store_id": "text",
    "body": "text",
    "state": "text",
    "attempts": "bigint",
    "next_attempt_at": "timestamptz",
    "created_at": "timestamptz",
}
_ASSUMED = {"provider": "text", "merchant_id": "text", "version": "bigint"}


def _records(name: str, columns: dict[str, str]) -> str:
    """Rows of JSON parameter `name` (objects with `columns` and their 1-based position `n`)."""
    typed = ", ".join(f"{column} {kind}" for column, kind in columns.items())
    return f"json_to_recordset(CAST(:{name} AS json)) AS {name}_row({typed}, n bigint)"


_RAW = ingest_sql.RAW_COLUMNS
_RAW_VALUES = ", ".join(
    f"CASE WHEN lost THEN '{Outcome.DUPLICATE}' ELSE outcome END"
    if name == "outcome"
    else "decode(body, 'hex')"
    if name == "body"
    else name
    for name in _RAW
)
_COMMAND_VALUES = [name for name in ingest_sql.COMMAND_COLUMNS if name != "raw_payload_id"]
_COMMAND_SELECTED = ", ".join(
    "decode(c_row.body, 'hex')" if name == "body" else f"c_row.{name}" for name in _COMMAND_VALUES
)
# Every name below comes from this module's own constants, never from input.
_STORE_NEW = PositionalSql.of(
    text(
        # `v`: the mapping versions the batch was transformed under (none: nothing assumed);
        # if one of them is no longer stored, the statement writes nothing.
        "WITH current AS MATERIALIZED (SELECT NOT EXISTS (SELECT FROM"  # noqa: S608
        f" {_records('v', _ASSUMED)} LEFT JOIN gw_mapping_versions AS stored"
        " ON stored.provider = v_row.provider AND stored.merchant_id = v_row.merchant_id"
        " WHERE coalesce(stored.version, 0) <> v_row.version) AS ok),"
        " delivery AS MATERIALIZED ("
        " SELECT d_row.*, nextval(pg_get_serial_sequence('gw_raw_payloads', 'id')) AS id"
        f" FROM {_records('d', _DELIVERY)}"
        " WHERE (SELECT ok FROM current)),"
        " claimed AS ("
        " INSERT INTO gw_dedupe_keys (provider, dedupe_key, raw_payload_id, created_at)"
        " SELECT provider, dedupe_key, id, claimed_at FROM delivery ORDER BY provider, dedupe_key"
        " ON CONFLICT (provider, dedupe_key) DO NOTHING RETURNING raw_payload_id),"
        " decided AS MATERIALIZED ("
        " SELECT delivery.*, deduplicate AND id NOT IN (SELECT raw_payload_id FROM claimed) AS lost"
        " FROM delivery),"
        " stored AS ("
        f" INSERT INTO gw_raw_payloads (id, {', '.join(_RAW)})"
        f" SELECT id, {_RAW_VALUES} FROM decided ORDER BY n RETURNING id),"
        " created AS ("
        f" INSERT INTO gw_commands (raw_payload_id, {', '.join(_COMMAND_VALUES)})"
        " SELECT decided.id,"
        f" {_COMMAND_SELECTED}"
        f" FROM {_records('c', _COMMAND)}"
        " JOIN decided ON decided.n = c_row.delivery"
        " WHERE NOT decided.lost ORDER BY c_row.n"
        " ON CONFLICT (idempotency_key) DO NOTHING RETURNING id, idempotency_key)"
        " SELECT n, id, lost, NULL AS idempotency_key FROM decided"
        " UNION ALL SELECT NULL, id, NULL, idempotency_key FROM created"
    )
)


def eligible(verdicts: Sequence[Verdict]) -> bool:
    """Whether `write` can store `verdicts`: each new and accepted, with no mapping to create."""
    return all(
        v.raw_id is None and v.outcome == Outcome.ACCEPTED and not v.created_mappings for v in verdicts
    )


@dataclass(frozen=True)
class Written:
    """What `write` stored: per delivery its raw id and whether its claim was lost; new commands."""

    raw_ids: list[int]
    lost: list[bool]
    created: dict[str, int]


async def write(
    session: AsyncSession,
    deliveries: Sequence[Mapping[str, object]],
    commands: Sequence[Mapping[str, object]],
    assumed: Mapping[tuple[str, str], int] | None = None,
) -> Written | None:
    """Store the deliveries' rows and their commands' rows in one statement (commits alone).

    Args:
        session: In a `posgate.db.raw.transaction(begin=False)` block nothing has begun in.
        deliveries: Raw payload rows (`ingest_sql.RAW_COLUMNS`, headers as a mapping), each
            with `deduplicate` and `claimed_at`, in order.
        commands: Command rows (`ingest_sql.COMMAND_COLUMNS` but the raw id), each with `delivery`
            (1-based position in `deliveries`), sorted by idempotency key.
        assumed: The mapping version of each (provider, merchant) row the commands were made
            under (`MappingCache.cached`), checked in the same statement; None when the caller
            read them itself in this batch.

    Returns:
        What was written, or None when an assumed version is stale and nothing was written.

    """
    merchants = sorted((assumed or {}).items())
    versions = [{"provider": p, "merchant_id": m, "version": v} for (p, m), v in merchants]
    parameters = {
        "d": _json(_numbered(deliveries, _DELIVERY)),
        "c": _json(_numbered(commands, _COMMAND)),
        "v": _json(versions),
    }
    rows = await raw.fetch(session, _STORE_NEW, parameters)
    if deliveries and not rows:
        return None
    raw_ids = [0] * len(deliveries)
    lost = [False] * len(deliveries)
    created: dict[str, int] = {}
    for position, row_id, was_lost, key in rows:
        if position is None:
            created[str(key)] = int(row_id)
        else:
            raw_ids[int(position) - 1] = int(row_id)
            lost[int(position) - 1] = bool(was_lost)
    return Written(raw_ids, lost, created)


def _numbered(rows: Sequence[Mapping[str, object]], columns: Mapping[str, str]) -> list[dict[str, object]]:
    """`columns` of each row, its body in hex, and its 1-based position as `n`."""
    return [
        {
            **{name: row[name] for name in columns if name != "body"},
            "body": cast(bytes, row["body"]).hex(),
            "n": n,
        }
        for n, row in enumerate(rows, 1)
    ]


def _json(records: list[dict[str, object]]) -> str:
    # Datetimes as RFC 3339 with their offset; a naive one as UTC (the gateway makes only aware ones).
    # Not `posgate.db.raw`'s JSON parameters: those write each datetime as UTC text through a
    # Python callback, for statements that compare it as text; `json_to_recordset` casts these.
    return orjson.dumps(records, option=orjson.OPT_NAIVE_UTC).decode()
