"""`admit`: a signature the HTTP layer already checked for one tenant is not checked again."""

from __future__ import annotations

import json

from posgate.gateway.adapters.base import InboundRequest
from posgate.gateway.adapters.standard import StandardAdapter
from posgate.gateway.pipeline import admit
from tests.unit.gateway.adapters.standard.cases import CASES, MERCHANT, NOW, SECRET

BODY = json.dumps(
    {
        "type": "inventory.movements",
        "timestamp": "2024-05-01T09:31:12Z",
        "data": {
            "merchant_id": MERCHANT,
            "store_id": "berlin-1",
            "movements": [{"movement_id": "m-1", "item_id": "TSHIRT-L", "type": "receipt", "delta": 1}],
        },
    }
).encode()


class CountingAdapter(StandardAdapter):
    """The standard adapter, counting its signature checks."""

    def __init__(self) -> None:
        self.checks = 0

    def verify_signature(self, request: InboundRequest, secrets, now) -> None:
        self.checks += 1
        super().verify_signature(request, secrets, now)


def request() -> InboundRequest:
    return CASES.request(BODY, CASES.sign(BODY, SECRET, NOW))


def test_a_delivery_verified_for_its_tenant_is_parsed_without_a_second_check() -> None:
    adapter = CountingAdapter()

    delivery = admit(adapter, request(), [SECRET], NOW, "tenant-acme", verified=True)

    assert adapter.checks == 0
    assert delivery.error is None and delivery.signed_by == "tenant-acme"
    assert delivery.event is not None and delivery.key


def test_without_a_verifying_tenant_the_signature_is_still_checked() -> None:
    adapter = CountingAdapter()

    # No single tenant's credential verified it: `verified` alone does not let it through.
    shared = admit(adapter, request(), [SECRET], NOW, None, verified=True)
    wrong = admit(adapter, request(), [b"whsec_" + b"d3Jvbmc="], NOW, "tenant-acme")

    assert adapter.checks == 2
    assert shared.error is not None and shared.error.reason == "ambiguous_signer"
    assert wrong.error is not None and wrong.error.reason == "signature_mismatch"
    assert wrong.signed_by is None
