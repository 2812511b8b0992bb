"""gRPC's wire format over HTTP/2 as the stream edge reads it: messages, timeouts, metadata.

The trailers and DATA frames it writes: `test_edge_trailers.py`.
"""

from __future__ import annotations

import struct

import pytest

from posgate import errors
from posgate.runtime import edge_wire

LIMIT = 1024


def prefixed(message: bytes, *, compressed: int = 0, claimed: int | None = None) -> bytes:
    return struct.pack(">BI", compressed, len(message) if claimed is None else claimed) + message


# frame


def test_frame_prefixes_an_uncompressed_flag_and_the_big_endian_length():
    assert edge_wire.frame(b"abc") == b"\x00\x00\x00\x00\x03abc"
    assert edge_wire.frame(b"") == b"\x00\x00\x00\x00\x00"
    assert edge_wire.frame(b"x" * 0x010203)[:5] == b"\x00\x00\x01\x02\x03"


# request_message


def test_a_body_of_exactly_one_message_yields_it():
    assert edge_wire.request_message(prefixed(b"hello"), LIMIT) == b"hello"


def test_an_empty_message_is_a_valid_request():
    assert edge_wire.request_message(prefixed(b""), LIMIT) == b""


def test_a_message_of_exactly_the_limit_is_accepted():
    assert edge_wire.request_message(prefixed(b"x" * LIMIT), LIMIT) == b"x" * LIMIT


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"", id="empty body"),
        pytest.param(b"\x00\x00\x00", id="shorter than the prefix"),
        pytest.param(prefixed(b"abc", claimed=100), id="truncated message"),
        pytest.param(prefixed(b"one") + prefixed(b"two"), id="two messages"),
        pytest.param(prefixed(b"abc") + b"\x00", id="trailing byte"),
    ],
)
def test_a_body_that_is_not_exactly_one_message_is_malformed(body):
    with pytest.raises(errors.InvalidArgument) as raised:
        edge_wire.request_message(body, LIMIT)
    assert raised.value.reason == "MALFORMED_REQUEST"


def test_a_compressed_message_is_unimplemented():
    with pytest.raises(errors.Unimplemented) as raised:
        edge_wire.request_message(prefixed(b"abc", compressed=1), LIMIT)
    assert raised.value.reason == "COMPRESSION_UNSUPPORTED"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(prefixed(b"x" * (LIMIT + 1)), id="whole message"),
        pytest.param(prefixed(b"", claimed=LIMIT + 1), id="claimed length only"),
    ],
)
def test_a_message_over_the_limit_is_resource_exhausted(body):
    with pytest.raises(errors.ResourceExhausted) as raised:
        edge_wire.request_message(body, LIMIT)
    assert raised.value.reason == "REQUEST_TOO_LARGE"


# parse_timeout


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (b"2H", 7200.0),
        (b"3M", 180.0),
        (b"5S", 5.0),
        (b"250m", 0.25),
        (b"1500u", 0.0015),
        (b"2000000n", 0.002),
        (b"99999999S", 99999999.0),
        (b"0m", 0.0),
    ],
)
def test_each_timeout_unit(value, seconds):
    assert edge_wire.parse_timeout(value) == pytest.approx(seconds)


def test_no_timeout_header_means_no_deadline():
    assert edge_wire.parse_timeout(None) is None


@pytest.mark.parametrize(
    "value",
    [b"", b"S", b"5", b"5s", b"5x", b"-5S", b"1.5S", b" 5S", b"5 S", b"123456789S", b"\xd9\xa1S"],
)
def test_a_malformed_timeout_is_invalid(value):
    with pytest.raises(errors.InvalidArgument) as raised:
        edge_wire.parse_timeout(value)
    assert raised.value.reason == "MALFORMED_TIMEOUT"


# call_metadata


def test_call_metadata_keeps_custom_headers_and_drops_pseudo_transport_and_reserved_ones():
    headers = [
        (b":method", b"POST"),
        (b":scheme", b"http"),
        (b":path", b"/posgate.inventory.v1.InventoryService/WatchStock"),
        (b":authority", b"localhost"),
        (b"te", b"trailers"),
        (b"content-type", b"application/grpc"),
        (b"user-agent", b"grpc-python/1.0"),
        (b"grpc-timeout", b"5S"),
        (b"grpc-accept-encoding", b"identity"),
        (b"authorization", b"Bearer token"),
        (b"x-correlation-id", b"abc-123"),
        (b"x-correlation-id", b"second"),
    ]
    assert edge_wire.call_metadata(headers) == [
        ("authorization", "Bearer token"),
        ("x-correlation-id", "abc-123"),
        ("x-correlation-id", "second"),
    ]


@pytest.mark.parametrize(
    ("encoded", "raw"),
    [
        pytest.param(b"AAH/", b"\x00\x01\xff", id="no padding needed"),
        pytest.param(b"AAH/AA", b"\x00\x01\xff\x00", id="unpadded"),
        pytest.param(b"AAH/AA==", b"\x00\x01\xff\x00", id="padded"),
        pytest.param(b"AAH/AAE", b"\x00\x01\xff\x00\x01", id="unpadded, one short"),
        pytest.param(b"AAH/AAE=", b"\x00\x01\xff\x00\x01", id="padded, one short"),
    ],
)
def test_binary_metadata_is_base64_decoded_padded_or_not(encoded, raw):
    assert edge_wire.call_metadata([(b"trace-bin", encoded)]) == [("trace-bin", raw)]


def test_binary_metadata_values_decode_to_their_bytes():
    metadata = edge_wire.call_metadata([(b"a-bin", b"AAECAw"), (b"b-bin", b"/w=="), (b"plain", b"AAECAw")])
    assert metadata == [("a-bin", b"\x00\x01\x02\x03"), ("b-bin", b"\xff"), ("plain", "AAECAw")]


# header_value


def test_header_value_is_the_first_of_its_name_or_none():
    headers = [(b"a", b"1"), (b"b", b"2"), (b"a", b"3")]
    assert edge_wire.header_value(headers, b"a") == b"1"
    assert edge_wire.header_value(headers, b"c") is None
