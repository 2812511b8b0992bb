"""The import endpoints' part of the gateway's OpenAPI document."""

from __future__ import annotations

from typing import Any

_BASE = "/v1/integrations/seller/{provider}/import"
_AUTH_NOTE = (
    "Authorization: Bearer <secret>, a secret of a webhook credential of the provider; "
    "the credential's tenant owns the upload and its jobs."
)
_PROVIDER = {"name": "provider", "in": "path", "required": True, "schema": {"type": "string"}}
_JOB = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "integer"}}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(name: str) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": _ref(name)}}}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, **_json("ImportProblem")}


_UNAUTHORIZED = _problem("No valid seller bearer token")


OPENAPI_PATHS: dict[str, Any] = {
    _BASE: {
        "get": {
            "summary": "The caller's 20 most recent import jobs, newest first",
            "parameters": [_PROVIDER],
            "responses": {
                "200": {
                    "description": "Jobs",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {"jobs": {"type": "array", "items": _ref("ImportJob")}},
                            }
                        }
                    },
                },
                "401": _UNAUTHORIZED,
            },
        },
        "post": {
            "summary": "Stream a bulk import (NDJSON or CSV of counts, deltas and products)",
            "description": _AUTH_NOTE,
            "parameters": [
                _PROVIDER,
                {"name": "merchant", "in": "query", "required": False, "schema": {"type": "string"}},
            ],
            "requestBody": {
                "required": True,
                "content": {
                    "application/x-ndjson": {"schema": {"type": "string"}},
                    "text/csv": {"schema": {"type": "string"}},
                },
            },
            "responses": {
                "202": {"description": "Every row's outcome is committed", **_json("ImportJob")},
                "400": _problem("Body broke off, or several merchants and none chosen"),
                "401": _UNAUTHORIZED,
                "403": _problem("`merchant` is not a merchant of the caller's tenant"),
                "415": _problem("Neither NDJSON nor CSV"),
                "422": _problem("No merchant of the provider is mapped to the caller's tenant"),
                "500": {"description": "The database failed; the job is `failed` with the error"},
            },
        },
    },
    _BASE + "/{job_id}": {
        "get": {
            "summary": "Progress of an import job",
            "parameters": [_PROVIDER, _JOB],
            "responses": {
                "200": {"description": "The job", **_json("ImportJob")},
                "401": _UNAUTHORIZED,
                "404": _problem("Unknown, or a job of another tenant"),
            },
        }
    },
    _BASE + "/{job_id}/errors": {
        "get": {
            "summary": "Per-row error report, in row order (JSON, or CSV with format=csv)",
            "parameters": [
                _PROVIDER,
                _JOB,
                {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0}},
                {
                    "name": "limit",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 10000},
                },
                {"name": "format", "in": "query", "schema": {"type": "string", "enum": ["json", "csv"]}},
            ],
            "responses": {
                "200": {
                    "description": "Rejected rows",
                    "content": {
                        "application/json": {"schema": _ref("ImportErrors")},
                        "text/csv": {"schema": {"type": "string"}},
                    },
                },
                "400": _problem("offset < 0, or limit outside 1..10000"),
                "401": _UNAUTHORIZED,
                "404": _problem("Unknown job, or a job of another tenant"),
            },
        }
    },
}

OPENAPI_SCHEMAS: dict[str, Any] = {
    "ImportProblem": {
        "type": "object",
        "properties": {"error": {"type": "string"}, "detail": {"type": "string"}},
        "required": ["error", "detail"],
    },
    "ImportJob": {
        "type": "object",
        "properties": {
            "job_id": {"type": "integer"},
            "status_url": {"type": "string"},
            "state": {"type": "string", "enum": ["running", "completed", "failed"]},
            "format": {"type": "string", "enum": ["ndjson", "csv"]},
            "merchant_id": {"type": "string"},
            "rows_total": {"type": "integer"},
            "rows_ok": {"type": "integer"},
            "rows_failed": {"type": "integer"},
            "commands_written": {"type": "integer"},
            "error": {"type": ["string", "null"]},
            "created_at": {"type": "string", "format": "date-time"},
            "finished_at": {"type": ["string", "null"], "format": "date-time"},
        },
        "required": ["job_id", "state", "rows_total", "rows_ok", "rows_failed"],
    },
    "ImportErrors": {
        "type": "object",
        "properties": {
            "job_id": {"type": "integer"},
            "offset": {"type": "integer"},
            "rows_failed": {"type": "integer"},
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "row_number": {"type": "integer"},
                        "reason": {"type": "string"},
                        "detail": {"type": "string"},
                        "raw": {"type": "string"},
                    },
                },
            },
        },
    },
}
