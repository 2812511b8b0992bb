"""HMAC-SHA256 webhook signatures: Base64 digest headers, computing and comparing digests."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence

from posgate.gateway.adapters.base import SignatureError

DIGEST_SIZE = hashlib.sha256().digest_size


def decode_base64_digest(encoded: str, header: str) -> bytes:
    """The 32 bytes of a Base64 HMAC-SHA256; `SignatureError(malformed_signature)` naming `header` if not."""
    try:
        digest = base64.b64decode(encoded, validate=True)
    except ValueError:  # binascii.Error is a ValueError
        raise SignatureError("malformed_signature", f"{header} is not Base64") from None
    if len(digest) != DIGEST_SIZE:
        raise SignatureError("malformed_signature", f"{header} is not an HMAC-SHA256")
    return digest


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    """The HMAC-SHA256 of `message` keyed with `key`."""
    return hmac.new(key, message, hashlib.sha256).digest()


def matches_any(keys: Sequence[bytes], message: bytes, given: bytes) -> bool:
    """Whether `given` is the HMAC-SHA256 of `message` under one of `keys`.

    Every key is tried (no early exit), so timing does not tell which key matched.
    """
    matches = [hmac.compare_digest(hmac_sha256(key, message), given) for key in keys]
    return any(matches)
