"""The synchronous path: accepted once, duplicates recorded, tampering and unmapped ids failed."""

from __future__ import annotations

from sqlalchemy import select

from posgate.gateway.failures import FailureFilter, get_failure, list_failures, replay
from posgate.gateway.mappings import MappingEntry
from posgate.gateway.pipeline import ingest
from posgate.gateway.tables import CommandState, MappingKind, commands, dedupe_keys, failures, raw_payloads
from tests.integration.gateway.conftest import MAPPED, SECRETS, count, delivery, load_mappings
from tests.unit.gateway.adapters.standard.cases import MERCHANT, NOW


async def test_signed_delivery_is_accepted_with_its_commands(sessions) -> None:
    await load_mappings(sessions, MAPPED)
    request = delivery("inventory_movements.json", extra_headers={"authorization": "Bearer s3cret"})

    result = await ingest(sessions, request, SECRETS, NOW, tenant="tenant-acme")

    assert result.outcome == "accepted"
    assert len(result.command_ids) == 1
    assert result.new_command_ids == result.command_ids
    async with sessions() as session:
        command = (await session.execute(select(commands))).one()
        raw = (await session.execute(select(raw_payloads))).one()
    assert command.state == CommandState.PENDING
    assert command.tenant_id == "tenant-acme"
    assert command.store_id == "store-berlin"
    assert command.target == "posgate.inventory.v1.InventoryService/ApplyMovements"
    assert raw.outcome == "accepted"
    assert raw.tenant_id == "tenant-acme"
    assert bytes(raw.body) == request.body
    assert "authorization" not in raw.headers
    assert "webhook-signature" in raw.headers
    assert await count(sessions, failures) == 0


async def test_same_delivery_three_times_makes_one_set_of_commands(sessions) -> None:
    await load_mappings(sessions, MAPPED)
    request = delivery("inventory_counts.json")

    results = [await ingest(sessions, request, SECRETS, NOW, tenant="tenant-acme") for _ in range(3)]

    assert [r.outcome for r in results] == ["accepted", "duplicate", "duplicate"]
    assert all(r.failure_class == "duplicate" for r in results[1:])
    assert await count(sessions, commands) == 1
    assert await count(sessions, raw_payloads) == 3
    assert await count(sessions, failures, failures.c.failure_class == "duplicate") == 2
    assert await count(sessions, dedupe_keys) == 1


async def test_tampered_delivery_is_an_auth_failure_and_nothing_else(sessions) -> None:
    await load_mappings(sessions, MAPPED)

    result = await ingest(
        sessions, delivery("inventory_movements.json", tamper=True), SECRETS, NOW, tenant="tenant-acme"
    )

    assert (result.outcome, result.failure_class, result.reason) == ("failed", "auth", "signature_mismatch")
    assert await count(sessions, raw_payloads, raw_payloads.c.outcome == "failed") == 1
    assert await count(sessions, failures, failures.c.failure_class == "auth") == 1
    assert await count(sessions, commands) == 0
    assert await count(sessions, dedupe_keys) == 0
    async with sessions() as session:
        detail = (await session.execute(select(failures.c.detail))).scalar_one()
    assert SECRETS[0].decode() not in detail


async def test_malformed_payload_is_a_validation_failure(sessions) -> None:
    await load_mappings(sessions, MAPPED)

    result = await ingest(
        sessions, delivery("malformed_unknown_type.json"), SECRETS, NOW, tenant="tenant-acme"
    )

    assert (result.outcome, result.failure_class) == ("failed", "validation")
    assert await count(sessions, commands) == 0


async def test_unmapped_sku_fails_then_replay_after_mapping_writes_commands_once(sessions) -> None:
    without_m = [entry for entry in MAPPED if entry.vendor_id != "TSHIRT-M"]
    await load_mappings(sessions, without_m)
    request = delivery("inventory_movements.json")

    first = await ingest(sessions, request, SECRETS, NOW, tenant="tenant-acme")
    # The vendor retries before anyone fixed the mapping: a second failure, still no commands.
    second = await ingest(sessions, request, SECRETS, NOW, tenant="tenant-acme")

    assert (first.failure_class, first.reason) == ("mapping", "unmapped_sku")
    assert second.failure_class == "mapping"
    assert await count(sessions, commands) == 0
    async with sessions() as session:
        listed = await list_failures(session, FailureFilter(failure_class="mapping"))
    assert {view.id for view in listed} == {first.failure_id, second.failure_id}
    assert all(view.tenant_id == "tenant-acme" for view in listed)

    await load_mappings(
        sessions, [MappingEntry("standard", MERCHANT, MappingKind.SKU, "TSHIRT-M", "ACME-TS-M")]
    )
    replayed = await replay(sessions, [first.failure_id, second.failure_id], NOW)
    again = await replay(sessions, [first.failure_id], NOW)

    assert replayed[0].outcome == "accepted"
    assert len(replayed[0].created_command_ids) == 1
    assert replayed[1].outcome == "accepted"
    assert replayed[1].created_command_ids == ()
    assert again[0].outcome == "already_resolved"
    assert await count(sessions, commands) == 1
    assert await count(sessions, failures, failures.c.resolved.is_(False)) == 0
    # The event is now claimed: a later redelivery is a duplicate.
    late = await ingest(sessions, request, SECRETS, NOW, tenant="tenant-acme")
    assert late.outcome == "duplicate"


async def test_replay_that_fails_again_records_the_current_reason(sessions) -> None:
    await load_mappings(sessions, MAPPED[:2])
    failed = await ingest(sessions, delivery("inventory_counts.json"), SECRETS, NOW, tenant="tenant-acme")

    (result,) = await replay(sessions, [failed.failure_id], NOW)

    assert (result.outcome, result.failure_class, result.reason) == ("failed", "mapping", "unmapped_sku")
    assert await count(sessions, failures, failures.c.resolved.is_(False)) == 1
    assert await count(sessions, commands) == 0


async def test_auth_failure_replays_only_with_a_secret_that_verifies(sessions) -> None:
    await load_mappings(sessions, MAPPED)
    request = delivery("inventory_counts.json")
    failed = await ingest(sessions, request, [b"whsec_" + b"d3Jvbmcga2V5"], NOW)
    assert failed.failure_class == "auth"

    (still,) = await replay(sessions, [failed.failure_id], NOW)
    assert (still.outcome, still.failure_class) == ("failed", "auth")

    async with sessions() as session:
        (open_auth,) = await list_failures(session, FailureFilter(failure_class="auth"))
    (fixed,) = await replay(
        sessions, [open_auth.id], NOW, secrets_for=lambda _provider: [("tenant-acme", SECRETS)]
    )
    assert fixed.outcome == "accepted"
    assert await count(sessions, commands) == 1


async def test_commands_for_services_without_dispatch_are_kept_awaiting(sessions) -> None:
    await load_mappings(sessions, MAPPED)

    result = await ingest(sessions, delivery("store_status.json"), SECRETS, NOW, tenant="tenant-acme")

    assert result.outcome == "accepted"
    async with sessions() as session:
        state = (await session.execute(select(commands.c.state))).scalar_one()
    assert state == CommandState.AWAITING_SERVICE


async def test_get_failure_returns_the_raw_payload(sessions) -> None:
    result = await ingest(sessions, delivery("inventory_counts.json"), SECRETS, NOW, tenant="tenant-acme")

    async with sessions() as session:
        found = await get_failure(session, result.failure_id)
    assert found is not None
    view, raw = found
    assert (view.failure_class, view.reason) == ("mapping", "unmapped_merchant")
    assert raw is not None
    assert raw.provider == "standard"
    assert raw.body == delivery("inventory_counts.json").body


async def test_concurrent_deliveries_of_one_event_make_one_set_of_commands(sessions) -> None:
    import asyncio

    await load_mappings(sessions, MAPPED)
    request = delivery("inventory_movements.json")

    results = await asyncio.gather(
        *(ingest(sessions, request, SECRETS, NOW, tenant="tenant-acme") for _ in range(5))
    )

    assert sorted(r.outcome for r in results) == ["accepted"] + ["duplicate"] * 4
    assert await count(sessions, commands) == 1


async def test_a_delivery_no_single_tenant_signed_is_refused(sessions) -> None:
    await load_mappings(sessions, MAPPED)
    # A secret shared by two tenants verifies, but attributes the delivery to neither.
    result = await ingest(sessions, delivery("inventory_movements.json"), SECRETS, NOW, tenant=None)
    assert (result.outcome, result.failure_class, result.reason) == ("failed", "auth", "ambiguous_signer")
