"""Replays are held to the tenant that signed the delivery, as deliveries are on arrival."""

from __future__ import annotations

import base64

from sqlalchemy import select, update

from posgate.gateway.adapters.base import InboundRequest
from posgate.gateway.failures import replay
from posgate.gateway.mappings import MappingEntry
from posgate.gateway.pipeline import ingest
from posgate.gateway.tables import MappingKind, commands, failures, raw_payloads
from tests.integration.gateway.conftest import count, delivery, load_mappings
from tests.unit.gateway.adapters.standard.cases import CASES, MERCHANT, NOW, SECRET

SECRET_A = SECRET
SECRET_B = b"whsec_" + base64.b64encode(b"posgate standard webhooks key of tenant b")
WRONG = b"whsec_" + base64.b64encode(b"a key nobody has configured")
CREDENTIALS = (("tenant-b", (SECRET_B,)), ("tenant-a", (SECRET_A,)))


def mapped_to(tenant: str) -> list[MappingEntry]:
    """The merchant, its store and both SKUs of the fixtures, under `tenant`."""
    return [
        MappingEntry("standard", MERCHANT, MappingKind.TENANT, "", tenant),
        MappingEntry("standard", MERCHANT, MappingKind.STORE, "berlin-1", f"{tenant}-berlin"),
        MappingEntry("standard", MERCHANT, MappingKind.SKU, "TSHIRT-L", "TS-L"),
        MappingEntry("standard", MERCHANT, MappingKind.SKU, "TSHIRT-M", "TS-M"),
    ]


def signed_with(secret: bytes) -> InboundRequest:
    body = CASES.body("inventory_movements.json")
    return CASES.request(body, CASES.sign(body, secret, NOW))


def credentials_for(_provider: str) -> tuple[tuple[str, tuple[bytes, ...]], ...]:
    return CREDENTIALS


async def held_unmapped(sessions, secret: bytes, tenant: str) -> int:
    """A delivery verified as `tenant`'s, held because its merchant is not mapped yet."""
    held = await ingest(sessions, signed_with(secret), (secret,), NOW, tenant=tenant)
    assert (held.failure_class, held.reason) == ("mapping", "unmapped_merchant")
    assert held.failure_id is not None
    return held.failure_id


async def test_ingest_records_the_tenant_that_signed(sessions) -> None:
    await held_unmapped(sessions, SECRET_A, "tenant-a")

    async with sessions() as session:
        signer = (await session.execute(select(raw_payloads.c.signed_by_tenant))).scalar_one()
    assert signer == "tenant-a"


async def test_replay_for_a_merchant_later_mapped_to_another_tenant_is_a_tenant_mismatch(sessions) -> None:
    failure_id = await held_unmapped(sessions, SECRET_A, "tenant-a")
    await load_mappings(sessions, mapped_to("tenant-b"))

    (result,) = await replay(sessions, [failure_id], NOW, secrets_for=credentials_for)

    assert (result.outcome, result.failure_class, result.reason) == ("failed", "auth", "tenant_mismatch")
    assert await count(sessions, commands) == 0


async def test_replay_for_the_signers_own_merchant_writes_its_commands(sessions) -> None:
    failure_id = await held_unmapped(sessions, SECRET_A, "tenant-a")
    await load_mappings(sessions, mapped_to("tenant-a"))

    (result,) = await replay(sessions, [failure_id], NOW, secrets_for=credentials_for)

    assert result.outcome == "accepted"
    assert len(result.created_command_ids) == 1
    async with sessions() as session:
        tenants = (await session.execute(select(commands.c.tenant_id))).scalars().all()
    assert tenants == ["tenant-a"]


async def test_auth_failure_replay_takes_the_tenant_whose_secret_verifies(sessions) -> None:
    await load_mappings(sessions, mapped_to("tenant-a"))
    by_a = await ingest(sessions, signed_with(SECRET_A), (WRONG,), NOW)
    by_b = await ingest(sessions, signed_with(SECRET_B), (WRONG,), NOW)
    assert (by_a.failure_class, by_b.failure_class) == ("auth", "auth")

    from_a, from_b = await replay(
        sessions, [by_a.failure_id, by_b.failure_id], NOW, secrets_for=credentials_for
    )

    assert from_a.outcome == "accepted"
    assert len(from_a.created_command_ids) == 1
    # Tenant B's secret verifies, but the merchant is tenant A's.
    assert (from_b.outcome, from_b.failure_class, from_b.reason) == ("failed", "auth", "tenant_mismatch")
    assert await count(sessions, commands) == 1


async def test_auth_failure_replay_without_a_verifying_credential_fails_again(sessions) -> None:
    await load_mappings(sessions, mapped_to("tenant-a"))
    failed = await ingest(sessions, signed_with(WRONG), (SECRET_A,), NOW)

    (result,) = await replay(sessions, [failed.failure_id], NOW, secrets_for=credentials_for)

    assert (result.outcome, result.failure_class, result.reason) == ("failed", "auth", "signature_mismatch")


async def test_auth_failure_replay_refuses_a_secret_shared_by_two_tenants(sessions) -> None:
    await load_mappings(sessions, mapped_to("tenant-a"))
    failed = await ingest(sessions, signed_with(SECRET_A), (WRONG,), NOW)
    shared = (("tenant-a", (SECRET_A,)), ("tenant-b", (SECRET_A,)))

    (result,) = await replay(sessions, [failed.failure_id], NOW, secrets_for=lambda _provider: shared)

    assert (result.outcome, result.reason) == ("failed", "ambiguous_signer")
    assert await count(sessions, commands) == 0


async def test_payload_without_a_recorded_signer_is_refused_and_left_open(sessions) -> None:
    # As stored before signers were recorded: verified, but by an unknown tenant.
    held = await ingest(sessions, delivery("inventory_movements.json"), (SECRET_A,), NOW, tenant="tenant-a")
    async with sessions.begin() as session:
        await session.execute(update(raw_payloads).values(signed_by_tenant=None))
    await load_mappings(sessions, mapped_to("tenant-a"))

    (result,) = await replay(sessions, [held.failure_id], NOW, secrets_for=credentials_for)

    assert (result.outcome, result.reason) == ("not_replayable", "signer_not_recorded")
    assert await count(sessions, commands) == 0
    assert await count(sessions, failures, failures.c.resolved.is_(False)) == 1
