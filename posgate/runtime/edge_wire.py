"""gRPC's wire format over HTTP/2, as far as a server-streaming edge needs it.

Length-prefixed messages, the request's headers as call metadata, and the response headers and
trailers (status, percent-encoded message, rich details), per
https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Sequence

import grpc

from posgate.errors import DomainError, InvalidArgument, ResourceExhausted, Unimplemented
from posgate.runtime.status import rich_status

Header = tuple[bytes, bytes]
Metadata = list[tuple[str, str | bytes]]

_PREFIX = struct.Struct(">BI")
PREFIX_SIZE = _PREFIX.size
RESPONSE_HEADERS: tuple[Header, ...] = ((b":status", b"200"), (b"content-type", b"application/grpc"))
# Request headers that are HTTP/2 or gRPC transport, not call metadata.
_TRANSPORT_HEADERS = frozenset({b"te", b"content-type", b"user-agent"})
_MAX_TIMEOUT_DIGITS = 8
# grpc-message keeps printable ASCII as it is, except `%`; every other byte is percent-encoded.
_PLAIN = frozenset(range(0x20, 0x7F)) - {ord("%")}


def frame(message: bytes) -> bytes:
    """One uncompressed length-prefixed message."""
    return _PREFIX.pack(0, len(message)) + message


_FRAME_HEADER = struct.Struct(">HBBBL")  # 24-bit length, type, flags, stream id
_DATA = 0x0


def data_frames(stream_id: int, message: bytes, max_frame: int) -> bytes:
    """HTTP/2 DATA frames carrying one length-prefixed message on `stream_id`, none over `max_frame`."""
    payload = frame(message)
    if len(payload) <= max_frame:
        return _frame_header(len(payload), stream_id) + payload
    parts = []
    for start in range(0, len(payload), max_frame):
        chunk = payload[start : start + max_frame]
        parts.append(_frame_header(len(chunk), stream_id) + chunk)
    return b"".join(parts)


def _frame_header(length: int, stream_id: int) -> bytes:
    return _FRAME_HEADER.pack(length >> 8, length & 0xFF, _DATA, 0, stream_id)


def request_message(body: bytes, limit: int) -> bytes:
    """The single message of a unary request body.

    Raises:
        InvalidArgument: The body is not exactly one length-prefixed message.
        Unimplemented: The message is compressed (this edge accepts identity only).
        ResourceExhausted: The message is over `limit` bytes.

    """
    if len(body) < PREFIX_SIZE:
        raise InvalidArgument("the request carries no message", reason="MALFORMED_REQUEST")
    compressed, length = _PREFIX.unpack_from(body)
    if compressed:
        raise Unimplemented("compressed requests are not accepted here", reason="COMPRESSION_UNSUPPORTED")
    if length > limit:
        raise ResourceExhausted(f"the request is over {limit} bytes", reason="REQUEST_TOO_LARGE")
    if len(body) != PREFIX_SIZE + length:
        raise InvalidArgument("the request must hold exactly one message", reason="MALFORMED_REQUEST")
    return body[PREFIX_SIZE:]


def call_metadata(headers: Sequence[Header]) -> Metadata:
    """The request's custom headers as gRPC invocation metadata (pseudo and reserved ones left out)."""
    metadata: Metadata = []
    for name, value in headers:
        if name.startswith((b":", b"grpc-")) or name in _TRANSPORT_HEADERS:
            continue
        key = name.decode("ascii", "replace")
        if key.endswith("-bin"):
            metadata.append((key, base64.b64decode(value + b"=" * (-len(value) % 4))))
        else:
            metadata.append((key, value.decode("latin-1")))
    return metadata


_TIMEOUT_UNITS = {b"H": 3600.0, b"M": 60.0, b"S": 1.0, b"m": 1e-3, b"u": 1e-6, b"n": 1e-9}


def parse_timeout(value: bytes | None) -> float | None:
    """The client's deadline in seconds from `grpc-timeout` (`<up to 8 digits><H|M|S|m|u|n>`).

    Raises:
        InvalidArgument: The header is present but malformed.

    """
    if value is None:
        return None
    digits, unit = value[:-1], value[-1:]
    if not digits.isdigit() or len(digits) > _MAX_TIMEOUT_DIGITS or unit not in _TIMEOUT_UNITS:
        raise InvalidArgument("grpc-timeout is malformed", reason="MALFORMED_TIMEOUT")
    return int(digits) * _TIMEOUT_UNITS[unit]


def header_value(headers: Sequence[Header], name: bytes) -> bytes | None:
    """The first value of header `name`, or None."""
    for key, value in headers:
        if key == name:
            return value
    return None


def trailers(
    code: grpc.StatusCode, message: str = "", extra: Sequence[tuple[str, str | bytes]] = ()
) -> list[Header]:
    """The trailing headers ending a call with `code`, `message` and custom trailing metadata."""
    block: list[Header] = [(b"grpc-status", str(code.value[0]).encode())]
    if message:
        block.append((b"grpc-message", _percent_encoded(message)))
    for key, value in extra:
        if isinstance(value, bytes):
            block.append((key.encode(), base64.b64encode(value).rstrip(b"=")))
        else:
            block.append((key.encode(), value.encode("latin-1", "replace")))
    return block


def error_trailers(error: DomainError, extra: Sequence[tuple[str, str | bytes]] = ()) -> list[Header]:
    """The trailers of a domain error: its code, message and `google.rpc` rich details."""
    status = rich_status(error)
    return trailers(status.code, status.details, (*extra, *status.trailing_metadata))


def _percent_encoded(message: str) -> bytes:
    return b"".join(
        bytes((byte,)) if byte in _PLAIN else b"%%%02X" % byte for byte in message.encode("utf-8")
    )
