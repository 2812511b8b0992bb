"""The admin API's part of the OpenAPI document: its schemas (from `admin_models`) and paths."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from posgate.gateway.http import admin_models as m

REF = "#/components/schemas/{model}"

MODELS: tuple[type[BaseModel], ...] = (
    m.ErrorBody,
    m.MappingModel,
    m.MappingKey,
    m.MappingList,
    m.CountResult,
    m.FailureOut,
    m.FailureList,
    m.RawPayloadOut,
    m.FailureDetail,
    m.FailureQuery,
    m.ReplayRequest,
    m.ReplayItem,
    m.ReplayResponse,
    m.ProfileModel,
    m.ProfileList,
    m.PolicyModel,
    m.PolicyList,
)


def _schemas() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for model in MODELS:
        schema = model.model_json_schema(ref_template=REF)
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    return schemas


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": REF.format(model=name)}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _operation(
    summary: str, ok: str, *, params: tuple[str, ...] = (), body: dict[str, Any] | None = None
) -> dict[str, Any]:
    error = _ref("ErrorBody")
    responses = {
        "200": _json(_ref(ok), "OK"),
        "400": _json(error, "Malformed request (bad parameter, unparsable body)"),
        "401": _json(error, "Missing or wrong admin bearer token"),
        "404": _json(error, "No such resource"),
        "422": _json(error, "Well-formed but invalid body"),
    }
    operation: dict[str, Any] = {
        "summary": summary,
        "tags": ["admin"],
        "description": "Requires `Authorization: Bearer <admin token>`.",
        "responses": responses,
    }
    if params:
        operation["parameters"] = [
            {
                "name": name,
                "in": "path" if name == "id" else "query",
                "required": name == "id",
                "schema": {"type": "integer"} if name in {"id", "limit"} else {"type": "string"},
            }
            for name in params
        ]
    if body is not None:
        operation["requestBody"] = {"required": True, "content": body}
    return operation


def _list_of(name: str) -> dict[str, Any]:
    return {"type": "array", "items": _ref(name)}


def _paths() -> dict[str, Any]:
    failure_params = ("class", "provider", "tenant", "store", "since", "limit")
    return {
        "/v1/admin/failures": {
            "get": _operation("List open failures by impact", "FailureList", params=failure_params),
        },
        "/v1/admin/failures/{id}": {
            "get": _operation("One failure with its raw payload", "FailureDetail", params=("id",)),
        },
        "/v1/admin/failures/replay": {
            "post": _operation(
                "Replay failures by id or filter",
                "ReplayResponse",
                body={"application/json": {"schema": _ref("ReplayRequest")}},
            ),
        },
        "/v1/admin/profiles": {
            "get": _operation("List validation profiles", "ProfileList", params=("provider", "tenant")),
            "put": _operation(
                "Store a validation profile",
                "ProfileModel",
                body={"application/json": {"schema": _ref("ProfileModel")}},
            ),
        },
    }


def _mapping_paths() -> dict[str, Any]:
    csv = {"schema": {"type": "string", "description": "provider,merchant_id,kind,vendor_id,canonical_id"}}
    return {
        "/v1/admin/mappings": {
            "get": _operation("List mappings", "MappingList", params=("provider", "merchant_id", "kind")),
            "put": _operation(
                "Bulk upsert mappings (JSON list or CSV)",
                "CountResult",
                body={"application/json": {"schema": _list_of("MappingModel")}, "text/csv": csv},
            ),
            "delete": _operation(
                "Delete mappings",
                "CountResult",
                body={"application/json": {"schema": _list_of("MappingKey")}},
            ),
        },
        "/v1/admin/mapping-policies": {
            "get": _operation("List unmapped-SKU policies", "PolicyList", params=("provider",)),
            "put": _operation(
                "Set a channel's or an account's unmapped-SKU policy",
                "PolicyModel",
                body={"application/json": {"schema": _ref("PolicyModel")}},
            ),
        },
    }


OPENAPI_SCHEMAS: dict[str, Any] = _schemas()
MAPPING_PATHS: dict[str, Any] = _mapping_paths()
OPENAPI_PATHS: dict[str, Any] = _paths()
