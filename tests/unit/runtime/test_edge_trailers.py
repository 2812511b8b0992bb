"""gRPC's wire format over HTTP/2: the trailers and DATA frames the stream edge writes."""

from __future__ import annotations

import base64
from urllib.parse import unquote_to_bytes

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from hyperframe.frame import DataFrame, Frame

from posgate import errors
from posgate.runtime import edge_wire


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
