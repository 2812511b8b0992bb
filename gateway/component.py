"""Wires the gateway process: gRPC health, the webhook HTTP server, and the command dispatcher.

The gRPC server serves the standard health and reflection services, so probes and operators
see the process. Beside it, uvicorn serves the ASGI app (`posgate.gateway.http.app`) on
`gateway_http_host:gateway_http_port`, and a dispatcher sends stored commands to the
inventory service, woken by each accepted delivery and polling for retries and for commands
left by a gateway that died before sending them. A pruner deletes, every
`gateway_prune_interval_s`, what the retention allows (`posgate.gateway.retention`). A
fetcher completes what Square webhooks only name (`posgate.gateway.command_fetch`): orders
with their lines from the Orders API (`posgate.gateway.order_fetch`), catalog versions with
their changed items from the Catalog API (`posgate.gateway.catalog_fetch`).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from posgate.clients.inventory import InventoryClient
from posgate.components import Component, Dependencies
from posgate.contracts import inventory
from posgate.gateway import mappings
from posgate.gateway.adapters.registry import ADAPTERS
from posgate.gateway.adapters.square.api import SquareApi
from posgate.gateway.adapters.square.catalog_api import SquareCatalogClient
from posgate.gateway.adapters.square.orders_api import SquareOrdersClient
from posgate.gateway.catalog_fetch import CatalogItems
from posgate.gateway.command_fetch import CommandFetcher
from posgate.gateway.dispatch import Dispatcher
from posgate.gateway.http.app import build_app
from posgate.gateway.http.context import GatewayContext
from posgate.gateway.http.security import DEV_PROVIDER, DEV_TENANT, WebhookGuard
from posgate.gateway.http.server import HttpServer
from posgate.gateway.ingestor import Ingestor
from posgate.gateway.order_fetch import OrderLines
from posgate.gateway.retention import GatewayPruner, RetentionPolicy
from posgate.gateway.senders import InventorySender
from posgate.gateway.tables import MappingKind
from posgate.runtime.server import ComponentSpec

log = logging.getLogger(__name__)

DISPATCH_LEASE = timedelta(seconds=15)
FETCH_LEASE = timedelta(minutes=2)
DEV_MERCHANT = "dev-merchant"
# What the README's curl example posts: merchant dev-merchant, store dev-store, item dev-item.
DEV_MAPPINGS = (
    mappings.MappingEntry(DEV_PROVIDER, DEV_MERCHANT, MappingKind.TENANT, "", DEV_TENANT),
    mappings.MappingEntry(DEV_PROVIDER, DEV_MERCHANT, MappingKind.STORE, "dev-store", "store-1"),
    mappings.MappingEntry(DEV_PROVIDER, DEV_MERCHANT, MappingKind.SKU, "dev-item", "SKU-1"),
)


def component(deps: Dependencies) -> Component:
    """The gateway component: health over gRPC, webhooks over HTTP, dispatch to the services."""
    settings = deps.settings
    token = settings.internal_token.get_secret_value() if settings.internal_token else None
    client = InventoryClient.connect(settings.inventory_target, token=token)
    dispatcher = _dispatcher(deps, client)
    ctx = GatewayContext(
        settings, deps.sessions, ADAPTERS, wake_dispatcher=dispatcher.wake, hand_over=dispatcher
    )
    app = build_app(ctx)
    # Built now, not on the first request, so a malformed allow-list fails the start.
    guard = app.state.webhook_guard = WebhookGuard.from_settings(settings)
    http = HttpServer(
        app,
        settings.gateway_http_host,
        settings.gateway_http_port,
        grace_s=settings.shutdown_grace_s,
        reuse_port=settings.gateway_http_reuse_port,
    )
    policy = RetentionPolicy.from_seconds(settings.gateway_retention_s, settings.gateway_audit_retention_s)
    pruner = GatewayPruner(deps.sessions, policy, interval_s=settings.gateway_prune_interval_s)
    fetcher, square_clients = _square_fetcher(deps)
    tasks: list[asyncio.Task[None]] = []

    async def start() -> None:
        if settings.dev_mode and not settings.webhook_credentials:
            await _use_dev_credential(deps)
        await http.start()
        tasks.append(asyncio.create_task(dispatcher.run(), name="gateway-dispatch"))
        pruner.start()
        fetcher.start()
        print(f"posgate gateway: HTTP listening on {settings.gateway_http_host}:{http.port}", flush=True)

    async def stop() -> None:
        await http.stop()
        await guard.limiter.close()
        ingestor: Ingestor | None = getattr(app.state, "ingestor", None)
        if ingestor is not None:
            await ingestor.close()
        dispatcher.stop()
        await asyncio.gather(*tasks)
        await pruner.stop()
        await fetcher.stop()
        for square in square_clients:
            await square.close()
        await client.close()

    spec = ComponentSpec(name="gateway", registrations=[], service_names=[], probes=deps.probes())
    return Component(spec, start, stop)


def _dispatcher(deps: Dependencies, client: InventoryClient) -> Dispatcher:
    """The dispatcher of stored commands; the inventory service is the one it can reach so far."""
    return Dispatcher(
        deps.sessions,
        {inventory.SERVICE_NAME: InventorySender(client)},
        max_attempts=deps.settings.dispatch_max_attempts,
        # Longer than the client's 10 s call timeout, short enough that commands a killed
        # gateway had in flight are sent again by its successor within seconds.
        lease=DISPATCH_LEASE,
    )


def _square_fetcher(deps: Dependencies) -> tuple[CommandFetcher, list[SquareApi]]:
    """The fetcher completing Square orders and catalog versions, and the clients it calls."""
    settings = deps.settings
    orders = SquareOrdersClient(settings.square_api_base, settings.square_access_tokens)
    catalog = SquareCatalogClient(settings.square_api_base, settings.square_access_tokens)
    fetcher = CommandFetcher(
        deps.sessions,
        [OrderLines(orders), CatalogItems(catalog)],
        max_attempts=settings.square_fetch_max_attempts,
        # A catalog fetch may take several pages, each up to the client's 10 s timeout.
        lease=FETCH_LEASE,
    )
    return fetcher, [orders, catalog]


async def _use_dev_credential(deps: Dependencies) -> None:
    async with deps.sessions() as session:
        await mappings.upsert(session, DEV_MAPPINGS, datetime.now(UTC))
        await session.commit()
    log.warning(
        "DEV MODE: no webhook_credentials configured; accepting the PUBLIC dev credential of "
        "the README (provider %s, tenant %s) and mapping merchant %s. Never use it in production.",
        DEV_PROVIDER,
        DEV_TENANT,
        DEV_MERCHANT,
    )
