"""The inventory ledger's bulk writes (`posgate.db.bulk`): one statement per table and batch.

An upsert of stock locks its rows in the order given (see `journal`).
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.dialects import sqlite

from posgate.db.bulk import Arrays, Statement, unnest_insert, write
from posgate.db.raw import PositionalSql
from posgate.services.inventory.tables import changes, movements, stock, store_sequences

__all__ = ["Arrays", "Statement", "write"]

INSERT_CHANGES = Statement.unnest(changes, [c.name for c in changes.c], "", sqlite.insert(changes))
CHANGES_ALONG_EVENTS = (
    unnest_insert(changes, [c.name for c in changes.c], prefix="change_"),
    unnest_insert(changes, [c.name for c in changes.c], prefix="change_", as_json=True),
)
"""On PostgreSQL: the change-log insert sent with the outbox's (`add_events(along=...)`), in
its array and JSON forms (`posgate.db.bulk.pick`)."""

_MOVEMENT_COLUMNS = [c.name for c in movements.c if c.name != "id"]
CLAIM_MOVEMENTS = Statement.unnest(
    movements,
    _MOVEMENT_COLUMNS,
    "ON CONFLICT (tenant_id, idempotency_key) DO NOTHING RETURNING tenant_id, idempotency_key",
    sqlite.insert(movements)
    .on_conflict_do_nothing(index_elements=["tenant_id", "idempotency_key"])
    .returning(movements.c.tenant_id, movements.c.idempotency_key),
)


def _claim_and_allocate(*, as_json: bool) -> PositionalSql:
    claim = unnest_insert(
        movements,
        _MOVEMENT_COLUMNS,
        "ON CONFLICT (tenant_id, idempotency_key) DO NOTHING RETURNING tenant_id, idempotency_key, store_id",
        as_json=as_json,
    ).text
    return PositionalSql.of(
        text(
            f"WITH claimed AS ({claim}),"  # noqa: S608 - our own table and column names
            " counts AS (SELECT tenant_id, store_id, count(*) AS n FROM claimed"
            " GROUP BY tenant_id, store_id),"
            " allocated AS (INSERT INTO inv_store_sequences (tenant_id, store_id, last_sequence)"
            " SELECT tenant_id, store_id, n FROM counts ORDER BY tenant_id, store_id"
            " ON CONFLICT (tenant_id, store_id) DO UPDATE"
            " SET last_sequence = inv_store_sequences.last_sequence + excluded.last_sequence"
            " RETURNING tenant_id, store_id, last_sequence)"
            " SELECT 0, tenant_id, idempotency_key, NULL::bigint FROM claimed"
            " UNION ALL SELECT 1, tenant_id, store_id, last_sequence FROM allocated"
        )
    )


# PostgreSQL: the claims and the sequence numbers of the claimed movements' stores in one round
# trip, in its array and JSON forms (`posgate.db.bulk.pick`). The per-store counts aggregate
# every claim before the first sequence row is locked (sorted), so the lock order of `journal`
# holds. Rows: (0, tenant, key, NULL) per claimed movement, (1, tenant, store, last sequence)
# per store.
CLAIM_AND_ALLOCATE = (_claim_and_allocate(as_json=False), _claim_and_allocate(as_json=True))

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

STOCK_COLUMNS = tuple(column.name for column in stock.c)
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
