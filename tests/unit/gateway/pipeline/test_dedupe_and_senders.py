"""Pure parts of the pipeline: de-duplication keys, header scrubbing, snapshots, senders."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc
import pytest

from posgate.clients.inventory import InventoryClient
from posgate.contracts import inventory
from posgate.gateway.adapters.base import EventIdentity
from posgate.gateway.dedupe import dedupe_key, storable_headers
from posgate.gateway.mappings import MappingEntry, MappingSnapshot
from posgate.gateway.senders import InventorySender, classify
from posgate.gateway.sending import ItemsRejected, PermanentSendError, TransientSendError

AT = datetime(2024, 5, 1, tzinfo=UTC)
APPLY = f"{inventory.SERVICE_NAME}/ApplyMovements"


def identity(event_id: str | None = None, version: str | None = None, entity: str = "e") -> EventIdentity:
    return EventIdentity(event_id, entity, version, "m1", AT)


def test_event_id_wins_over_version_and_body() -> None:
    assert dedupe_key("p", identity("ev1", "v1"), b"a") == dedupe_key("p", identity("ev1", "v2"), b"b")
    assert dedupe_key("p", identity("ev1"), b"a") != dedupe_key("p", identity("ev2"), b"a")
    assert dedupe_key("p", identity("ev1"), b"a") != dedupe_key("q", identity("ev1"), b"a")


def test_version_then_payload_hash() -> None:
    assert dedupe_key("p", identity(None, "v1"), b"a") == dedupe_key("p", identity(None, "v1"), b"b")
    assert dedupe_key("p", identity(None, "v1", "x"), b"a") != dedupe_key(
        "p", identity(None, "v1", "y"), b"a"
    )
    assert dedupe_key("p", identity(), b"a") == dedupe_key("p", identity(), b"a")
    assert dedupe_key("p", identity(), b"a") != dedupe_key("p", identity(), b"b")
    assert len(dedupe_key("p", identity(), b"a")) <= 128


def test_credential_headers_are_not_stored() -> None:
    kept = storable_headers({"Authorization": "Bearer x", "Cookie": "c", "X-Api-Key": "k", "webhook-id": "1"})
    assert kept == {"webhook-id": "1"}


def test_snapshot_answers_only_for_its_merchant() -> None:
    snapshot = MappingSnapshot("p", "m1", [MappingEntry("p", "m1", "store", "loc", "s1")])
    assert snapshot.store("p", "m1", "loc") == "s1"
    assert snapshot.store("p", "m2", "loc") is None
    assert snapshot.sku("p", "m1", "loc") is None


def rpc_error(code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details="boom")


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (grpc.StatusCode.UNAVAILABLE, TransientSendError),
        (grpc.StatusCode.DEADLINE_EXCEEDED, TransientSendError),
        (grpc.StatusCode.INVALID_ARGUMENT, PermanentSendError),
        (grpc.StatusCode.PERMISSION_DENIED, PermanentSendError),
    ],
)
def test_status_codes_are_classified(code: grpc.StatusCode, kind: type) -> None:
    assert isinstance(classify(rpc_error(code)), kind)


class FakeInventoryClient(InventoryClient):
    """Answers `apply_movements` from a script instead of a channel."""

    def __init__(self, answer: list[inventory.pb.MovementResult] | Exception) -> None:
        self.answer = answer
        self.seen: list[str] = []

    async def apply_movements(self, movements, *, command=None):
        self.seen.append(command.idempotency_key)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def movements_body() -> bytes:
    request = inventory.pb.ApplyMovementsRequest()
    request.meta.idempotency_key = "cmd-1"
    request.movements.add(idempotency_key="mv-1", delta=1)
    return request.SerializeToString()


async def test_inventory_sender_sends_the_stored_request() -> None:
    client = FakeInventoryClient([inventory.pb.MovementResult(outcome=inventory.pb.MOVEMENT_OUTCOME_APPLIED)])
    await InventorySender(client).send(APPLY, movements_body(), "cmd-1")
    assert client.seen == ["cmd-1"]


async def test_inventory_sender_reports_rejected_items_and_errors() -> None:
    rejected = inventory.pb.MovementResult(
        idempotency_key="mv-1", outcome=inventory.pb.MOVEMENT_OUTCOME_REJECTED, reason="unknown_sku"
    )
    with pytest.raises(ItemsRejected, match="mv-1: unknown_sku"):
        await InventorySender(FakeInventoryClient([rejected])).send(APPLY, movements_body(), "cmd-1")
    with pytest.raises(TransientSendError):
        await InventorySender(FakeInventoryClient(rpc_error(grpc.StatusCode.UNAVAILABLE))).send(
            APPLY, movements_body(), "cmd-1"
        )
    with pytest.raises(PermanentSendError):
        await InventorySender(FakeInventoryClient([])).send(f"{inventory.SERVICE_NAME}/Reserve", b"", "k")
    with pytest.raises(PermanentSendError):
        await InventorySender(FakeInventoryClient([])).send(APPLY, b"\xff\xff", "k")
