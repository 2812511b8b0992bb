"""A bulk call's ledger rows, column-wise, and which of its movements come first with their keys.

Part of `ledger`'s transaction: pure functions of the commands, no database.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from datetime import datetime

from posgate.services.inventory import bulk
from posgate.services.inventory.domain import CountCommand, Kind, MovementCommand


def ledger_rows(
    commands: Sequence[MovementCommand | CountCommand],
    kinds: Sequence[Kind],
    deltas: Sequence[int],
    now: datetime,
) -> bulk.Arrays:
    """The ledger rows of `commands`, column-wise."""
    return {
        "tenant_id": [c.position.tenant_id for c in commands],
        "idempotency_key": [c.idempotency_key for c in commands],
        "store_id": [c.position.store_id for c in commands],
        "sku": [c.position.sku for c in commands],
        "kind": [kind.value for kind in kinds],
        "delta": list(deltas),
        "reference": [getattr(c, "reference", "") for c in commands],
        "provider": [c.provider for c in commands],
        "occurred_at": [getattr(c, "occurred_at", None) for c in commands],
        "recorded_at": [now] * len(commands),
    }


_KIND_VALUES: dict[Kind | None, str] = {kind: kind.value for kind in Kind} | {None: Kind.ADJUSTMENT.value}


def movement_rows(commands: Sequence[MovementCommand], now: datetime) -> bulk.Arrays:
    """`ledger_rows` of movements; `zip` transposes them in a quarter of the comprehensions' time."""
    if not commands:
        return ledger_rows(commands, [], [], now)
    keys, positions, kinds, deltas, occurred, references, providers = zip(*commands, strict=True)
    tenants, stores, skus = zip(*positions, strict=True)
    return {
        "tenant_id": tenants,
        "idempotency_key": keys,
        "store_id": stores,
        "sku": skus,
        "kind": [_KIND_VALUES[kind] for kind in kinds],
        "delta": deltas,
        "reference": references,
        "provider": providers,
        "occurred_at": occurred,
        "recorded_at": [now] * len(commands),
    }


_IDEMPOTENCY_KEY = operator.attrgetter("idempotency_key")


def first_occurrences(commands: Sequence[MovementCommand]) -> Sequence[int]:
    """The index of each command whose (tenant, key) no earlier command of the call has."""
    # Distinct keys are distinct (tenant, key) pairs too; a set of the keys alone costs half as much.
    if len(set(map(_IDEMPOTENCY_KEY, commands))) == len(commands):
        return range(len(commands))
    seen: set[tuple[str, str]] = set()
    firsts: list[int] = []
    for index, command in enumerate(commands):
        if (key := claim_key(command)) not in seen:
            seen.add(key)
            firsts.append(index)
    return firsts


def claim_key(command: MovementCommand) -> tuple[str, str]:
    """What a movement claims: its idempotency key, unique per tenant."""
    return (command.position.tenant_id, command.idempotency_key)
