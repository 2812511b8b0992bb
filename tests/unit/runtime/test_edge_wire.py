"""gRPC's wire format over HTTP/2 as the stream edge writes and reads it."""

from __future__ import annotations

import base64
import struct
from urllib.parse import unquote_to_bytes

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from hyperframe.frame import DataFrame, Frame

from posgate import errors
from posgate.runtime import edge_wire

LIMIT = 1024


def prefixed(message: bytes, *, compressed: int = 0, claimed: int | None = None) -> bytes:
    return struct.pack(">BI", compressed, len(message) if claimed is None else claimed) + message


def parse_frames(data: bytes) -> list[DataFrame]:
    frames, position = [], 0
    while position < len(data):
        frame, length = Frame.parse_frame_header(memoryview(data[position : position + 9]))
        frame.parse_body(memoryview(data[position + 9 : position + 9 + length]))
        assert len(data[position + 9 : position + 9 + length]) == length, "a frame is cut short"
        assert isinstance(frame, DataFrame), f"not a DATA frame: {frame}"
        frames.append(frame)
        position += 9 + length
    return frames


def unpadded_b64decode(value: bytes) -> bytes:
    return base64.b64decode(value + b"=" * (-len(value) % 4))


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


# trailers


def test_ok_trailers_carry_the_status_number_and_no_message():
    assert edge_wire.trailers(grpc.StatusCode.OK) == [(b"grpc-status", b"0")]


@pytest.mark.parametrize(
    ("code", "number"),
    [
        (grpc.StatusCode.CANCELLED, b"1"),
        (grpc.StatusCode.INVALID_ARGUMENT, b"3"),
        (grpc.StatusCode.DEADLINE_EXCEEDED, b"4"),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, b"8"),
        (grpc.StatusCode.UNIMPLEMENTED, b"12"),
        (grpc.StatusCode.UNAUTHENTICATED, b"16"),
    ],
)
def test_the_status_is_its_decimal_number(code, number):
    assert edge_wire.trailers(code, "x")[0] == (b"grpc-status", number)


def test_the_message_is_percent_encoded_as_the_grpc_http2_spec_says():
    message = "café: 100% done\r\n\ttab ~ok~ \x7f€"
    block = dict(edge_wire.trailers(grpc.StatusCode.INTERNAL, message))
    encoded = block[b"grpc-message"]
    assert encoded == b"caf%C3%A9: 100%25 done%0D%0A%09tab ~ok~ %7F%E2%82%AC"
    # Only printable ASCII except `%` is left as is, and a spec-conforming decoder gets the text back.
    assert all(0x20 <= byte <= 0x7E for byte in encoded)
    assert unquote_to_bytes(encoded).decode("utf-8") == message


def test_printable_ascii_other_than_percent_passes_through_unchanged():
    printable = "".join(chr(c) for c in range(0x20, 0x7F) if c != ord("%"))
    assert dict(edge_wire.trailers(grpc.StatusCode.UNKNOWN, printable))[b"grpc-message"] == printable.encode()


def test_custom_trailers_follow_binary_ones_as_unpadded_base64():
    block = edge_wire.trailers(
        grpc.StatusCode.OK,
        "",
        [
            ("x-correlation-id", "abc"),
            ("one-bin", b"\x00"),
            ("two-bin", b"\x00\x01"),
            ("three-bin", b"\xff\xfe\xfd"),
        ],
    )
    assert block == [
        (b"grpc-status", b"0"),
        (b"x-correlation-id", b"abc"),
        (b"one-bin", b"AA"),
        (b"two-bin", b"AAE"),
        (b"three-bin", b"//79"),
    ]
    assert unpadded_b64decode(dict(block)[b"two-bin"]) == b"\x00\x01"


# error_trailers


def test_error_trailers_carry_code_message_and_rich_details():
    error = errors.ResourceExhausted(
        "the stream fell too far behind", reason="STREAM_TOO_SLOW", metadata={"limit": "1024"}
    )
    block = edge_wire.error_trailers(error, [("x-correlation-id", "c-1")])
    names = [name for name, _ in block]
    assert names[0] == b"grpc-status"
    assert names.count(b"grpc-status-details-bin") == 1
    values = dict(block)
    assert values[b"grpc-status"] == b"8"
    assert values[b"grpc-message"] == b"the stream fell too far behind"
    assert values[b"x-correlation-id"] == b"c-1"
    details = values[b"grpc-status-details-bin"]
    assert b"=" not in details
    status = status_pb2.Status.FromString(unpadded_b64decode(details))
    assert status.code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
    assert status.message == "the stream fell too far behind"
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    assert info.reason == "STREAM_TOO_SLOW"
    assert info.domain == "posgate"
    assert dict(info.metadata) == {"limit": "1024"}


def test_error_trailers_percent_encode_the_error_message():
    block = dict(edge_wire.error_trailers(errors.InvalidArgument("bad ünïcode 5%", reason="BAD")))
    assert block[b"grpc-status"] == b"3"
    assert block[b"grpc-message"] == b"bad %C3%BCn%C3%AFcode 5%25"


# data_frames


def test_a_message_under_the_frame_size_is_one_data_frame_with_a_9_byte_header():
    data = edge_wire.data_frames(7, b"m" * 100, 16384)
    assert len(data) == 9 + 105
    assert data[:3] == (105).to_bytes(3, "big")
    assert data[3] == 0  # DATA
    assert data[4] == 0  # no flags: the stream stays open
    assert data[5:9] == (7).to_bytes(4, "big")
    assert data[9:] == edge_wire.frame(b"m" * 100)
    (parsed,) = parse_frames(data)
    assert parsed.stream_id == 7
    assert not parsed.flags
    assert parsed.data == edge_wire.frame(b"m" * 100)


def test_the_length_field_uses_all_24_bits():
    message = bytes(range(256)) * 300  # 76,800 bytes: the length needs its top byte
    data = edge_wire.data_frames(2**31 - 1, message, 2**24 - 1)
    length = edge_wire.PREFIX_SIZE + len(message)
    assert data[:3] == length.to_bytes(3, "big")
    assert data[3:5] == b"\x00\x00"
    assert data[5:9] == b"\x7f\xff\xff\xff"
    (parsed,) = parse_frames(data)
    assert parsed.stream_id == 2**31 - 1
    assert parsed.data == edge_wire.frame(message)


def test_a_message_exactly_filling_a_frame_is_one_frame():
    message = b"z" * (16384 - edge_wire.PREFIX_SIZE)
    (parsed,) = parse_frames(edge_wire.data_frames(1, message, 16384))
    assert len(parsed.data) == 16384


@pytest.mark.parametrize(
    ("size", "max_frame", "frames"),
    [(16384 - 4, 16384, 2), (40_000, 16384, 3), (1000, 100, 11), (3 * 16384 - 5, 16384, 3)],
)
def test_a_larger_message_is_split_into_frames_none_over_the_maximum(size, max_frame, frames):
    message = bytes(n % 251 for n in range(size))
    parsed = parse_frames(edge_wire.data_frames(3, message, max_frame))
    assert len(parsed) == frames
    assert all(frame.stream_id == 3 and not frame.flags for frame in parsed)
    assert all(0 < len(frame.data) <= max_frame for frame in parsed)
    assert b"".join(frame.data for frame in parsed) == edge_wire.frame(message)
