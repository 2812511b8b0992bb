"""Completes Square catalog changes: the fetch step that reads the items a catalog version changed.

A `catalog.version.updated` webhook says only when the seller's catalog last changed
(`updated_at`), so the Square adapter's UpsertItems is stored without items, `awaiting_fetch`.
The gateway's `CommandFetcher` (`posgate.gateway.command_fetch`, where claims, retries, dead
letters and replays are described) runs `CatalogItems` for it: it asks SearchCatalogObjects
(`posgate.gateway.adapters.square.catalog_api`) for the ITEMs changed or deleted after a
`begin_time`, page by page, and maps them (`posgate.gateway.adapters.square.catalog_items`).

`begin_time` is the catalog version of the merchant's latest earlier UpsertItems whose fetch
completed (`awaiting_service`, `pending` or `dispatched`): everything changed since is fetched,
so a lost or failed notification in between costs nothing. Without one (the merchant's first
catalog webhook, or the earlier ones pruned by retention), it is the version's own
`updated_at` less `FIRST_FETCH_MARGIN`, which covers the objects of a change that took a
while to save; older changes are not fetched. Items fetched twice are harmless: each carries
Square's version. Failures: `square_catalog_fetch_refused`, `square_catalog_fetch_invalid`,
`square_catalog_fetch_exhausted`, `square_token_missing` and `unmapped_sku`. Items that do not
map do not hold back those that do: they are held in a new command (`_held`) whose replay
fetches the version again. When none maps, the command itself is dead with the failure.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from posgate.contracts import catalog
from posgate.gateway.adapters.base import FetchError, MappingLookup, MappingMissing
from posgate.gateway.adapters.commands import UPSERT_ITEMS
from posgate.gateway.adapters.square.api import CATALOG_FETCH, EXHAUSTED, INVALID, PROVIDER
from posgate.gateway.adapters.square.catalog_api import SquareCatalogClient
from posgate.gateway.adapters.square.catalog_items import complete_upsert, parse_pages
from posgate.gateway.claims import Claimed
from posgate.gateway.command_fetch import Fetched, Held
from posgate.gateway.tables import CommandState, commands, raw_payloads

FIRST_FETCH_MARGIN = timedelta(minutes=5)
HELD = ":held:"
# How many of the merchant's latest completed catalog commands are read for the version before.
RECENT = 32
_COMPLETED = (CommandState.AWAITING_SERVICE, CommandState.PENDING, CommandState.DISPATCHED)


class CatalogItems:
    """The `FetchStep` of Square catalog versions: SearchCatalogObjects, then canonical items."""

    target = UPSERT_ITEMS
    exhausted = f"{CATALOG_FETCH}_{EXHAUSTED}"

    def __init__(self, client: SquareCatalogClient) -> None:
        """Read catalog items through `client`."""
        self._client = client

    async def fetch(self, sessions: async_sessionmaker[AsyncSession], command: Claimed) -> Fetched:
        """The items changed since the merchant's previous catalog version; raises `FetchError`."""
        request = catalog.pb.UpsertItemsRequest.FromString(command.body)
        merchant = request.meta.source.merchant_id
        version = _version(request.meta.source.entity_version)
        async with sessions() as session:
            previous = await previous_version(session, merchant, version)
        begin = previous if previous is not None else version - FIRST_FETCH_MARGIN
        pages = await self._client.search_items(merchant, begin)

        def complete(lookup: MappingLookup) -> catalog.pb.UpsertItemsRequest | Held:
            completed, missing = complete_upsert(request, parse_pages(pages), lookup, merchant)
            if not missing:
                return completed
            if not completed.items:
                raise missing[0]  # nothing maps: the command itself is held, as an order would be
            return _held(request, command, completed, missing)

        return Fetched(merchant, complete)


def _held(
    request: catalog.pb.UpsertItemsRequest,
    command: Claimed,
    completed: catalog.pb.UpsertItemsRequest,
    missing: list[MappingMissing],
) -> Held:
    """The items that map go out now; the version is fetched again for the rest once replayed.

    The remainder's key names the command it came from, so a remainder that is itself held
    again gets a key of its own (`<first key>:held:<command id>`).
    """
    key = f"{command.idempotency_key.split(HELD)[0]}{HELD}{command.id}"
    remainder = catalog.pb.UpsertItemsRequest()
    remainder.CopyFrom(request)
    remainder.meta.idempotency_key = key  # the catalog service de-duplicates by it
    return Held(completed, missing, remainder, key)


async def previous_version(session: AsyncSession, merchant_id: str, version: datetime) -> datetime | None:
    """The newest catalog version before `version` whose items the merchant's commands hold."""
    query = (
        select(commands.c.body)
        .join(raw_payloads, raw_payloads.c.id == commands.c.raw_payload_id)
        .where(raw_payloads.c.provider == PROVIDER, raw_payloads.c.merchant_id == merchant_id)
        .where(commands.c.target == UPSERT_ITEMS, commands.c.state.in_(_COMPLETED))
        .order_by(commands.c.id.desc())
        .limit(RECENT)
    )
    earlier = []
    for body in (await session.execute(query)).scalars():
        source = catalog.pb.UpsertItemsRequest.FromString(bytes(body)).meta.source
        try:
            stored = datetime.fromisoformat(source.entity_version)
        except ValueError:
            continue  # not a catalog version's command
        if stored.tzinfo is not None and stored < version:
            earlier.append(stored)
    return max(earlier, default=None)


def _version(entity_version: str) -> datetime:
    try:
        version = datetime.fromisoformat(entity_version)
    except ValueError:
        version = None
    if version is None or version.tzinfo is None:
        detail = f"catalog version {entity_version[:64]!r} is not a time"
        raise FetchError(f"{CATALOG_FETCH}_{INVALID}", detail, retryable=False)
    return version
