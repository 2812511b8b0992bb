"""The fixture convention every vendor's test folder follows, read by `test_contract.py`.

A vendor's folder `tests/unit/gateway/adapters/<name>/` (named as the adapter is registered)
holds `fixtures/*.json`, recorded bodies byte for byte as the vendor sends them, and a
`cases.py` whose `CASES` is a `VendorCases`: which fixtures are documented deliveries and
which are signed but malformed, how the vendor signs a body (done at test time with a test
secret, so fixtures stay readable), the clock to verify at, and a fake mapping under which
every id in the valid fixtures is mapped.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from posgate.gateway.adapters.base import Adapter, InboundRequest, MappingLookup


def change_last_digit(body: bytes) -> bytes:
    """The body with its last digit changed: what an attacker editing a quantity would do."""
    digits = list(re.finditer(rb"[0-9]", body))
    if not digits:
        return body + b" "
    at = digits[-1].start()
    changed = b"1" if body[at : at + 1] != b"1" else b"2"
    return body[:at] + changed + body[at + 1 :]


@dataclass(frozen=True)
class VendorCases:
    """What the contract test needs to run one vendor's adapter.

    Attributes:
        adapter: The adapter under test.
        fixtures: The vendor's `fixtures/` folder.
        valid: Fixtures that are documented deliveries: they verify, parse and map.
        malformed: Fixtures the vendor could sign but that are not of the documented shape.
        secret: The test secret `sign` signs with.
        rotated_out_secret: Another well-formed secret that did not sign anything.
        signature_header: The (lower-case) header that carries the signature.
        sign: `(body, secret, at) -> headers` that sign `body` as the vendor would at `at`.
        now: The clock at which the valid fixtures are fresh.
        stale_now: A clock at which they are stale; None when the scheme signs no time.
        mapping: Every vendor id in the valid fixtures mapped.
        topic: The webhook topic the fixtures are posted to.
        tamper: Changes a body in a way the signature must catch.

    """

    adapter: Adapter
    fixtures: Path
    valid: tuple[str, ...]
    malformed: tuple[str, ...]
    secret: bytes
    rotated_out_secret: bytes
    signature_header: str
    sign: Callable[[bytes, bytes, datetime], Mapping[str, str]]
    now: datetime
    stale_now: datetime | None
    mapping: MappingLookup
    topic: str
    tamper: Callable[[bytes], bytes] = field(default=change_last_digit)

    def body(self, fixture: str) -> bytes:
        """The recorded body of `fixture`, byte for byte."""
        return (self.fixtures / fixture).read_bytes()

    def request(self, body: bytes, headers: Mapping[str, str] | None = None) -> InboundRequest:
        """`body` as delivered at `now`, signed with `secret` unless `headers` are given."""
        signed = self.sign(body, self.secret, self.now) if headers is None else headers
        return InboundRequest(
            provider=self.adapter.name,
            topic=self.topic,
            url=f"https://gateway.example.com/webhooks/{self.adapter.name}/{self.topic}",
            headers={name.lower(): value for name, value in signed.items()},
            body=body,
            received_at=self.now.astimezone(UTC),
        )

    def delivery(self, fixture: str) -> InboundRequest:
        """The signed delivery of a recorded fixture."""
        return self.request(self.body(fixture))
