"""The OpenAPI description of the webhook endpoints (`posgate.gateway.http.webhooks`).

Which statuses a vendor gets and why, as docs/gateway-http.md tells it; the app's
`/openapi.json` merges these paths and schemas with the other route modules'.
"""

from __future__ import annotations

from typing import Any

from posgate.gateway.adapters.base import POS_TOPICS


def _json(description: str, schema: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


_RESPONSES: dict[str, Any] = {
    "200": _json(
        "Duplicate: this event was accepted before; nothing new was stored as commands.", "WebhookDuplicate"
    ),
    "202": _json(
        "Stored. `accepted`: commands written, dispatched asynchronously. `held`: stored but not "
        "turned into commands (mapping missing, adapter fault); an operator fixes and replays it, "
        "so the vendor must not retry.",
        "WebhookStored",
    ),
    "401": _json(
        "Signature missing, malformed or wrong, timestamp stale, or signed by a tenant other than "
        "the one the event addresses (`tenant_mismatch`). Recorded as an auth failure.",
        "WebhookError",
    ),
    "403": _json("The caller's address is not in the provider's allow-list. Audited.", "WebhookError"),
    "404": _json("Unknown provider, or a topic the provider does not post to. Audited.", "WebhookError"),
    "413": _json("Body larger than `webhook_max_body_bytes`. Audited.", "WebhookError"),
    "422": _json("Signed, but not a payload of the vendor's documented shape. Recorded.", "WebhookError"),
    "429": {
        **_json("Over the provider's rate; retry after `Retry-After` seconds. Audited.", "WebhookError"),
        "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}},
    },
    "500": _json("Nothing could be stored (database down); retry later.", "WebhookError"),
}


def _operation(summary: str, parameters: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "parameters": parameters,
            "requestBody": {
                "required": True,
                "description": "The vendor's raw body, byte for byte as signed, with its signature headers.",
                "content": {"application/json": {"schema": {"type": "object"}}},
            },
            "responses": _RESPONSES,
        }
    }


_PROVIDER = {"name": "provider", "in": "path", "required": True, "schema": {"type": "string"}}
_TOPIC = {
    "name": "topic",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "enum": sorted(POS_TOPICS)},
}

OPENAPI_PATHS: dict[str, Any] = {
    "/v1/integrations/pos/{provider}/webhooks/{topic}": _operation(
        "A POS vendor's webhook delivery", [_PROVIDER, _TOPIC]
    ),
    "/v1/integrations/erp/{provider}/webhooks/stock": _operation("An ERP's stock feed delivery", [_PROVIDER]),
}

OPENAPI_SCHEMAS: dict[str, Any] = {
    "WebhookStored": {
        "type": "object",
        "required": ["status", "raw_payload_id"],
        "properties": {
            "status": {"type": "string", "enum": ["accepted", "held"]},
            "raw_payload_id": {"type": "integer"},
            "commands": {"type": "array", "items": {"type": "integer"}, "description": "accepted only"},
            "reason": {"type": "string", "description": "held only: why (e.g. unmapped_sku)"},
        },
    },
    "WebhookDuplicate": {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"const": "duplicate"}, "raw_payload_id": {"type": "integer"}},
    },
    "WebhookError": {
        "type": "object",
        "required": ["error", "reason"],
        "properties": {
            "error": {"type": "string"},
            "reason": {"type": "string", "description": "Stable snake_case code; never a secret."},
        },
    },
}
