"""The stream edge's unfinished requests: bounded per request and, together, per connection."""

from __future__ import annotations

from posgate.errors import ResourceExhausted
from posgate.runtime.edge_requests import Incoming, Request


def request(limit: int = 100) -> Request:
    return Request([(b":path", b"/s/M")], "/s/M", None, limit)


def reason(refusal: object) -> str:
    assert isinstance(refusal, ResourceExhausted)
    return refusal.reason


def test_a_body_is_kept_until_its_request_is_taken() -> None:
    incoming = Incoming(buffer_limit=1000)
    incoming.open(1, request())
    assert incoming.add(1, b"abc") is None
    assert incoming.add(1, b"def") is None
    taken = incoming.take(1)
    assert taken is not None
    assert bytes(taken.body) == b"abcdef"
    assert incoming.take(1) is None
    assert incoming.add(1, b"late") is None  # a stream no longer received: ignored


def test_a_request_over_its_own_limit_is_refused_and_dropped() -> None:
    incoming = Incoming(buffer_limit=1000)
    incoming.open(1, request(limit=10))
    assert incoming.add(1, b"x" * 15) is None  # the 5-byte message prefix is not the message
    assert reason(incoming.add(1, b"x")) == "REQUEST_TOO_LARGE"
    assert incoming.take(1) is None


def test_requests_together_are_bounded_and_the_bytes_come_back() -> None:
    incoming = Incoming(buffer_limit=250)
    for stream_id in (1, 3, 5):
        incoming.open(stream_id, request())
    assert incoming.add(1, b"x" * 100) is None
    assert incoming.add(3, b"x" * 100) is None
    assert reason(incoming.add(5, b"x" * 100)) == "CONNECTION_BUSY"
    assert incoming.take(5) is None  # the refused request was dropped, the others kept
    assert incoming.take(1) is not None  # ended (or reset): its 100 bytes are free again
    incoming.open(7, request())
    assert incoming.add(7, b"x" * 100) is None
    assert reason(incoming.add(3, b"x" * 51)) == "CONNECTION_BUSY"
