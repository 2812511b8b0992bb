"""The inventory ledger's bulk writes (`posgate.db.bulk`): one statement per table and batch.

An upsert of stock locks its rows in the order given (see `journal`).
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.dialects import sqlite

from posgate.db.bulk import Arrays, Statement, unnest_insert, unnest_rows, write
from posgate.db.raw import PositionalSql
from posgate.services.inventory.tables import change_blocks, movements, stock, store_sequences

__all__ = ["Arrays", "Statement", "write"]

BLOCK_COLUMNS = [c.name for c in change_blocks.c]
INSERT_BLOCKS = Statement.unnest(change_blocks, BLOCK_COLUMNS, "", sqlite.insert(change_blocks))
BLOCKS_ALONG_EVENTS = (
    unnest_insert(change_blocks, BLOCK_COLUMNS, prefix="block_"),
    unnest_insert(change_blocks, BLOCK_COLUMNS, prefix="block_", as_json=True),
)
"""On PostgreSQL: the change-log insert sent with the outbox's (`add_events(along=...)`), in
its array and JSON forms (`posgate.db.bulk.pick`)."""

_MOVEMENT_COLUMNS = [c.name for c in movements.c]
CLAIM_MOVEMENTS = Statement.unnest(
    movements,
    _MOVEMENT_COLUMNS,
    "ON CONFLICT (tenant_id, idempotency_key) DO NOTHING RETURNING tenant_id, idempotency_key",
    sqlite.insert(movements)
    .on_conflict_do_nothing(index_elements=["tenant_id", "idempotency_key"])
    .returning(movements.c.tenant_id, movements.c.idempotency_key),
)


STOCK_COLUMNS = tuple(column.name for column in stock.c)
# `CLAIM_AND_STOCK` returns the stock rows' `updated_at` as NULL: its caller knows the time it
# wrote there, and decoding a timestamp costs asyncpg about 0.5 µs a row.
_STOCK_COLUMNS_BUT_TIME = ", ".join("NULL::timestamptz" if c == "updated_at" else c for c in STOCK_COLUMNS)


# Every ledger row of a batch is recorded at the batch's time: `CLAIM_AND_STOCK` takes it once
# (`:now`), not as a column PostgreSQL would parse a timestamp from per row.
_GIVEN_COLUMNS = [c for c in _MOVEMENT_COLUMNS if c != "recorded_at"]


def _claim_and_stock(*, as_json: bool) -> PositionalSql:
    rows = unnest_rows(movements, _GIVEN_COLUMNS, as_json=as_json, ordinality=True)
    columns = ", ".join(_GIVEN_COLUMNS)
    stock_columns = ", ".join(STOCK_COLUMNS)
    return PositionalSql.of(
        text(
            f"WITH given AS MATERIALIZED ({rows}),"  # noqa: S608 - our own table and column names
            f" claimed AS (INSERT INTO inv_movements ({columns}, recorded_at)"
            f" SELECT {columns}, CAST(:now AS timestamptz) FROM given ORDER BY n"
            " ON CONFLICT (tenant_id, idempotency_key) DO NOTHING RETURNING tenant_id, idempotency_key),"
            " fresh AS MATERIALIZED (SELECT i.tenant_id, i.idempotency_key, i.store_id, i.sku, i.delta, i.n"
            " FROM given AS i JOIN claimed AS c"
            " ON c.tenant_id = i.tenant_id AND c.idempotency_key = i.idempotency_key),"
            " counts AS (SELECT tenant_id, store_id, count(*) AS taken FROM fresh"
            " GROUP BY tenant_id, store_id),"
            " allocated AS (INSERT INTO inv_store_sequences (tenant_id, store_id, last_sequence)"
            " SELECT tenant_id, store_id, taken FROM counts ORDER BY tenant_id, store_id"
            " ON CONFLICT (tenant_id, store_id) DO UPDATE"
            " SET last_sequence = inv_store_sequences.last_sequence + excluded.last_sequence"
            " RETURNING tenant_id, store_id, last_sequence),"
            # Each store's sequence before this batch (returned below), and the same as one
            # {tenant: {store: base}} value: a lookup per movement. Joined to `fresh` instead, the
            # planner (which cannot estimate these CTEs) chose nested loops over every store for
            # every movement, a fifth of the statement's time for a thousand movements in 16 stores.
            " based AS MATERIALIZED (SELECT a.tenant_id, a.store_id, a.last_sequence - c.taken AS base,"
            " a.last_sequence"
            " FROM allocated AS a JOIN counts AS c ON c.tenant_id = a.tenant_id AND c.store_id = a.store_id),"
            " bases AS MATERIALIZED (SELECT jsonb_object_agg(t.tenant_id, t.stores) AS base FROM"
            " (SELECT tenant_id, jsonb_object_agg(store_id, base) AS stores FROM based"
            " GROUP BY tenant_id) AS t),"
            " numbered AS MATERIALIZED (SELECT f.tenant_id, f.n, f.store_id, f.sku, f.delta,"
            " CAST(b.base -> f.tenant_id ->> f.store_id AS bigint)"
            " + row_number() OVER (PARTITION BY f.tenant_id, f.store_id ORDER BY f.n) AS sequence"
            " FROM fresh AS f CROSS JOIN bases AS b),"
            f" stocked AS (INSERT INTO inv_stock ({stock_columns})"
            " SELECT tenant_id, store_id, sku, sum(delta), 0, max(sequence), 0, NULL, 0,"
            " CAST(:alert_ok AS text), false, CAST(:now AS timestamptz)"
            " FROM numbered GROUP BY tenant_id, store_id, sku ORDER BY tenant_id, store_id, sku"
            " ON CONFLICT (tenant_id, store_id, sku) DO UPDATE"
            " SET on_hand = inv_stock.on_hand + excluded.on_hand,"
            " sequence = excluded.sequence, updated_at = excluded.updated_at"
            f" RETURNING {stock_columns})"
            # Each store's sequence before this batch where on_hand goes and its last one where
            # sequence goes (its claimed movements are numbered between them in the order given),
            # then the number of each row given that was not claimed
            # (from 1; usually none), both in the shape of a stock row. A row per claimed movement
            # cost asyncpg and the caller about a microsecond each. The union's column names come
            # from here: the stock columns', so that a stock row is read by name as it arrives.
            " SELECT 0 AS kind, tenant_id, store_id, NULL::text AS sku,"
            " base AS on_hand, NULL::bigint AS reserved, last_sequence AS sequence,"
            " NULL::bigint AS count_version, NULL::bigint AS low_threshold, NULL::bigint AS out_threshold,"
            " NULL::text AS alert, NULL::boolean AS negative, NULL::timestamptz AS updated_at"
            " FROM based"
            " UNION ALL SELECT 2, NULL, NULL, NULL, g.n, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL"
            " FROM given AS g WHERE NOT EXISTS (SELECT FROM fresh AS f WHERE f.n = g.n)"
            f" UNION ALL SELECT 1, {_STOCK_COLUMNS_BUT_TIME} FROM stocked"
        )
    )


# PostgreSQL: one statement claims the movements, numbers the claimed ones per store and adds
# them to stock (array and JSON forms, `posgate.db.bulk.pick`). Each step aggregates all of the
# previous one before it locks a row (claims, then store sequence rows sorted, then stock rows
# sorted), so the lock order of `journal` holds. Rows: (0, tenant, store, NULL, base, ...) per
# store with claimed movements (its sequence before them), (2, ..., n, ...) per row given that
# was not claimed (n numbers the rows given, from 1), then (1, every stock column) per position
# after the update, `updated_at` NULL; the columns are named as the stock columns.
CLAIM_AND_STOCK = (_claim_and_stock(as_json=False), _claim_and_stock(as_json=True))

_allocate = sqlite.insert(store_sequences)
ALLOCATE = Statement.unnest(
    store_sequences,
    ("tenant_id", "store_id", "last_sequence"),
    "ON CONFLICT (tenant_id, store_id) DO UPDATE"
    " SET last_sequence = inv_store_sequences.last_sequence + excluded.last_sequence"
    " RETURNING tenant_id, store_id, last_sequence",
    _allocate.on_conflict_do_update(
        index_elements=["tenant_id", "store_id"],
        set_={"last_sequence": store_sequences.c.last_sequence + _allocate.excluded.last_sequence},
    ).returning(store_sequences.c.tenant_id, store_sequences.c.store_id, store_sequences.c.last_sequence),
)

_add = sqlite.insert(stock)
# New positions are inserted as given; existing ones get the delta added and the new sequence.
ADD_TO_STOCK = Statement.unnest(
    stock,
    STOCK_COLUMNS,
    "ON CONFLICT (tenant_id, store_id, sku) DO UPDATE SET on_hand = inv_stock.on_hand + excluded.on_hand,"
    " sequence = excluded.sequence, updated_at = excluded.updated_at"
    f" RETURNING {', '.join(STOCK_COLUMNS)}",
    _add.on_conflict_do_update(
        index_elements=["tenant_id", "store_id", "sku"],
        set_={
            "on_hand": stock.c.on_hand + _add.excluded.on_hand,
            "sequence": _add.excluded.sequence,
            "updated_at": _add.excluded.updated_at,
        },
    ).returning(*stock.c),
)
