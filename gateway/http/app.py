"""Builds the gateway's ASGI application from the route modules.

Each route module (`webhooks`, `imports`, `admin_mappings`, `admin`) exports `ROUTES` (Starlette routes) and
`OPENAPI_PATHS` (its part of the OpenAPI document); this module only assembles them.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from posgate import __version__
from posgate.gateway.http.context import GatewayContext

# Route modules register here, in the order their paths should be matched.
ROUTE_MODULES: tuple[str, ...] = ("webhooks", "imports", "admin_mappings", "admin")


def openapi_document(paths: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the gateway."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "posgate gateway",
            "version": __version__,
            "description": "Vendor webhooks in, canonical commands out; bulk imports; administration.",
        },
        "paths": paths,
        "components": {"schemas": schemas},
    }


def build_app(ctx: GatewayContext) -> Starlette:
    """The ASGI app serving every registered route plus `/openapi.json` and `/healthz`."""
    import importlib  # noqa: PLC0415  (route modules import this one's context)

    routes: list[Route] = []
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for name in ROUTE_MODULES:
        module = importlib.import_module(f"posgate.gateway.http.{name}")
        routes.extend(module.ROUTES)
        paths.update(module.OPENAPI_PATHS)
        schemas.update(getattr(module, "OPENAPI_SCHEMAS", {}))
    document = openapi_document(paths, schemas)

    async def openapi(_request: Request) -> JSONResponse:
        return JSONResponse(document)

    async def healthz(_request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    routes.append(Route("/openapi.json", openapi, methods=["GET"]))
    routes.append(Route("/healthz", healthz, methods=["GET"]))
    app = Starlette(routes=routes)
    app.state.ctx = ctx
    return app
