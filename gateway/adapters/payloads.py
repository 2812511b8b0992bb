"""Reading webhook bodies: JSON documents and pydantic validation failures."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from posgate.gateway.adapters.base import PayloadError


def load_exact_json(body: bytes) -> Any:
    """Parse a body exactly: big integers stay ints, floats become `Decimal`, NaN is refused.

    Raises `PayloadError(malformed_json)` when the body is not JSON.
    """
    try:
        return json.loads(body, parse_float=Decimal, parse_constant=_refuse_constant)
    except (ValueError, UnicodeDecodeError) as error:
        raise PayloadError("malformed_json", str(error)) from error


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def load_json_object(document: bytes, what: str = "body") -> dict[str, Any]:
    """Parse a JSON object; `PayloadError` (`invalid_json`, `invalid_payload`) naming `what` if not."""
    try:
        raw = json.loads(document)
    except (UnicodeDecodeError, ValueError):
        raise PayloadError("invalid_json", f"the {what} is not JSON") from None
    if not isinstance(raw, dict):
        raise PayloadError("invalid_payload", f"the {what} is not a JSON object")
    return raw


def validation_detail(error: ValidationError, most: int | None = None) -> str:
    """What failed (at most `most` problems), without echoing the payload's values."""
    problems = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors(include_input=False)]
    return "; ".join(problems[:most])
