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
                }
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
                "400": {"description": "Body broke off, or several merchants and none chosen"},
                "401": {"description": "No valid seller bearer token"},
                "415": {"description": "Neither NDJSON nor CSV"},
            },
        },
    },
    _BASE + "/{job_id}": {
        "get": {
            "summary": "Progress of an import job",
            "parameters": [_PROVIDER, _JOB],
            "responses": {
                "200": {"description": "The job", **_json("ImportJob")},
                "404": {"description": "Unknown"},
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
                "404": {"description": "Unknown job"},
            },
        }
    },
}

OPENAPI_SCHEMAS: dict[str, Any] = {
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
