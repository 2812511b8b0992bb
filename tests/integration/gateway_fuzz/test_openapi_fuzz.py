"""Schema-driven fuzzing of the gateway's OpenAPI document (schemathesis over the real app).

Every documented operation is called with generated requests, valid and invalid by the
schema, with no, wrong and valid credentials: none may answer 5xx, and each answer must use
a documented status, content type, body schema and headers. The document itself must be a
valid OpenAPI 3.1 document that names every route the app serves.
"""

from __future__ import annotations

import asyncio
import copy
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy.ext.asyncio import async_sessionmaker
from starlette.routing import Route

from posgate.db.engine import create_engine
from posgate.gateway.adapters.registry import ADAPTERS
from posgate.gateway.http.app import build_app
from posgate.gateway.http.context import GatewayContext
from posgate.settings import Settings
from tests.integration.gateway_fuzz.conftest import (
    ADMIN_TOKEN,
    NOW,
    SECRET,
    SELLER,
    SELLER_TOKEN,
    FuzzGateway,
)
from tests.unit.gateway.adapters.standard.cases import sign

BASE_URL = "http://gateway.test"
MAX_EXAMPLES = 30
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
SIGNED = "signed"  # marks a webhook case to be signed with the standard credential's secret
# Served but deliberately outside the document: the document itself and the liveness probe.
UNDOCUMENTED = {("GET", "/openapi.json"), ("GET", "/healthz")}
# Per path family: the real provider fixed for part of the cases (so they get past the
# unknown-provider door) and the credentials drawn for each case.
FAMILIES: dict[str, tuple[str | None, tuple[str | None, ...]]] = {
    "/v1/admin/": (None, (None, "Bearer wrong-admin-token", f"Bearer {ADMIN_TOKEN}")),
    "/v1/integrations/seller/": (SELLER, (None, "Bearer wrong-seller-token", f"Bearer {SELLER_TOKEN}")),
    "/v1/integrations/pos/": ("standard", (None, SIGNED)),
    "/v1/integrations/erp/": ("standard", (None, SIGNED)),
}


def _family(path: str) -> tuple[str | None, tuple[str | None, ...]]:
    return next(value for prefix, value in FAMILIES.items() if path.startswith(prefix))


def _strategy(operation: Any) -> st.SearchStrategy[tuple[Any, str | None]]:
    """Positive and negative cases, half of them for the family's real provider, and a credential."""
    provider, credentials = _family(operation.path)
    modes = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    cases = [operation.as_strategy(mode) for mode in modes]
    if provider is not None and "{provider}" in operation.path:
        cases += [operation.as_strategy(mode, path_parameters={"provider": provider}) for mode in modes]
    return st.tuples(st.one_of(cases), st.sampled_from(credentials))


def _wire(case: Any, credential: str | None) -> tuple[str, str, dict[str, str], bytes]:
    """Method, URL, headers and body bytes of `case` as schemathesis serializes it, plus auth."""
    kwargs = case.as_transport_kwargs(base_url=BASE_URL)
    fields = ("method", "url", "headers", "params", "cookies", "json", "data", "files")
    prepared = requests.Request(**{name: kwargs[name] for name in fields if name in kwargs}).prepare()
    raw = prepared.body or b""
    body = raw.encode() if isinstance(raw, str) else raw
    assert isinstance(body, bytes)  # never a stream: schemathesis serializes the whole body
    headers = {
        name: value.decode("latin-1") if isinstance(value, bytes) else value
        for name, value in prepared.headers.items()
    }
    if credential == SIGNED:
        signed = sign(body, SECRET, NOW)
        headers |= {name: signed[name] for name in ("webhook-id", "webhook-timestamp", "webhook-signature")}
    elif credential is not None:
        headers["Authorization"] = credential
    return str(prepared.method), str(prepared.url), headers, body


def _fuzz(operation: Any, send: Callable[[str, str, dict[str, str], bytes], httpx.Response]) -> None:
    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(drawn=_strategy(operation))
    def run(drawn: tuple[Any, str | None]) -> None:
        case, credential = drawn
        method, url, headers, body = _wire(case, credential)
        response = send(method, url, headers, body)
        case.validate_response(response, checks=CHECKS, headers=headers)

    run()


async def test_no_operation_answers_5xx_or_off_the_document(fuzz_gateway: FuzzGateway) -> None:
    loop = asyncio.get_running_loop()
    document = (await fuzz_gateway.client.get("/openapi.json")).json()
    schema = schemathesis.openapi.from_dict(document)

    def send(method: str, url: str, headers: dict[str, str], body: bytes) -> httpx.Response:
        # Hypothesis runs in a worker thread; the app and its engine stay on the test's loop.
        request = fuzz_gateway.client.request(method, url, headers=headers, content=body)
        return asyncio.run_coroutine_threadsafe(request, loop).result(timeout=60)

    def fuzz_all() -> list[str]:
        failures = []
        for result in schema.get_all_operations():
            operation = result.ok()  # type: ignore[union-attr]  # an Err raises here: the test fails
            try:
                _fuzz(operation, send)
            except (Exception, BaseExceptionGroup) as error:  # report every operation's failures together
                failures.append(f"{operation.label}:\n{error}")
        return failures

    failures = await asyncio.to_thread(fuzz_all)
    assert not failures, "\n\n".join(failures)


def _template(path: str) -> str:
    """A path with every parameter (and its Starlette converter) reduced to `{}`."""
    return re.sub(r"\{[^}]*\}", "{}", path)


def test_openapi_document_is_valid_and_names_every_route(tmp_path) -> None:
    # The engine is never connected: serving the document needs no database.
    sessions = async_sessionmaker(create_engine(f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}"))
    app = build_app(GatewayContext(Settings(), sessions, ADAPTERS))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    schema.validate()
    assert [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]

    documented = {
        (method.upper(), _template(path))
        for path, item in schema.raw_schema["paths"].items()
        for method in item
        if method in {"get", "put", "post", "delete", "patch"}
    }
    served = {
        (method, _template(route.path))
        for route in app.routes
        if isinstance(route, Route)
        for method in route.methods or ()
        if method != "HEAD"
    }
    assert served - UNDOCUMENTED == documented


def _without_description(document: dict[str, Any]) -> dict[str, Any]:
    """The document with a response's required `description` removed."""
    operation = document["paths"]["/v1/admin/profiles"]["get"]
    operation["responses"]["200"] = {"content": operation["responses"]["200"]["content"]}
    return document


def _parameter_without_location(document: dict[str, Any]) -> dict[str, Any]:
    """The document with a parameter's required `in` removed."""
    del document["paths"]["/v1/admin/failures/{id}"]["get"]["parameters"][0]["in"]
    return document


@pytest.mark.parametrize("breaks", [_without_description, _parameter_without_location])
def test_document_validation_catches_an_invalid_document(breaks, tmp_path) -> None:
    sessions = async_sessionmaker(create_engine(f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}"))
    app = build_app(GatewayContext(Settings(), sessions, ADAPTERS))
    document = copy.deepcopy(schemathesis.openapi.from_asgi("/openapi.json", app).raw_schema)
    with pytest.raises(Exception, match=r"."):
        schemathesis.openapi.from_dict(breaks(document)).validate()
