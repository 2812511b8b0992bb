"""What makes two deliveries the same event, and what of a delivery is safe to store.

The key follows the design's order: the provider's event id, else the entity version, else a
hash of (provider, merchant, entity, timestamp, payload). The merchant is part of every key
because some vendors number events per merchant account.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from posgate.gateway.adapters import keys
from posgate.gateway.adapters.base import EventIdentity
from posgate.gateway.tables import dedupe_keys

# Credentials, not evidence: a replay never needs them, and a leaked raw store must not leak
# them. Signature headers stay: an HMAC is not a secret, and an auth replay re-checks it.
CREDENTIAL_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "api-key"}
)


def dedupe_key(provider: str, identity: EventIdentity, body: bytes) -> str:
    """A fixed-length key naming the event a delivery carries."""
    if identity.provider_event_id:
        basis = ["event", identity.provider_event_id]
    elif identity.entity_version:
        basis = ["version", identity.entity, identity.entity_version]
    else:
        occurred = identity.occurred_at.isoformat() if identity.occurred_at else ""
        basis = ["hash", identity.entity, occurred, hashlib.sha256(body).hexdigest()]
    return f"{basis[0]}:{keys.digest([provider, identity.merchant_id, *basis])}"


def storable_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers with credential headers removed, names lower-cased."""
    return {name.lower(): value for name, value in headers.items() if name.lower() not in CREDENTIAL_HEADERS}


async def first_delivery(session: AsyncSession, provider: str, key: str) -> int | None:
    """The raw payload that claimed `key` first, if any delivery did."""
    query = select(dedupe_keys.c.raw_payload_id).where(
        dedupe_keys.c.provider == provider, dedupe_keys.c.dedupe_key == key
    )
    found = (await session.execute(query)).scalar_one_or_none()
    return None if found is None else int(found)
