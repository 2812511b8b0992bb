"""Retention: finished rows go after the retention; open work stays however old."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from posgate.gateway.audit import audit
from posgate.gateway.dispatch import Dispatcher
from posgate.gateway.pipeline import ingest
from posgate.gateway.retention import DEDUPE_FLOOR, GatewayPruner, RetentionPolicy, prune
from posgate.gateway.sending import CommandSender
from posgate.gateway.tables import CommandState, FailureClass, commands, dedupe_keys, failures, raw_payloads
from tests.integration.gateway import retention_rows as rows
from tests.integration.gateway.conftest import MAPPED, SECRETS, count, delivery, load_mappings
from tests.unit.gateway.adapters.standard.cases import NOW, SECRET, sign

TODAY = datetime(2025, 1, 1, tzinfo=UTC)
POLICY = RetentionPolicy(rows.days(30), rows.days(90))
OLD = TODAY - rows.days(31)
ANCIENT = TODAY - rows.days(365)
RECENT = TODAY - rows.days(29)


async def test_old_finished_rows_go_and_recent_ones_stay(sessions) -> None:
    old_raw, old_command = await rows.dispatched(sessions, OLD)
    new_raw, new_command = await rows.dispatched(sessions, RECENT)
    duplicate_raw = await rows.raw(sessions, OLD, outcome="duplicate")
    duplicate = await rows.failure(
        sessions, OLD, raw_id=duplicate_raw, resolved=True, failure_class=FailureClass.DUPLICATE
    )

    report = await prune(sessions, POLICY, TODAY)

    assert (report.commands, report.failures, report.raw_payloads) == (1, 1, 2)
    assert await rows.ids(sessions, commands.c.id) == {new_command}
    assert await rows.ids(sessions, raw_payloads.c.id) == {new_raw}
    assert duplicate not in await rows.ids(sessions, failures.c.id)
    assert old_raw not in await rows.ids(sessions, raw_payloads.c.id)
    assert old_command not in await rows.ids(sessions, commands.c.id)


async def test_open_work_and_its_raw_payloads_stay_however_old(sessions) -> None:
    raw_ids = [await rows.raw(sessions, ANCIENT) for _ in range(6)]
    retrying = await rows.command(sessions, raw_ids[0], CommandState.PENDING, ANCIENT)
    leased = await rows.command(
        sessions, raw_ids[1], CommandState.PENDING, ANCIENT, next_attempt_at=TODAY + rows.days(1)
    )
    awaiting = await rows.command(sessions, raw_ids[2], CommandState.AWAITING_SERVICE, ANCIENT)
    fetching = await rows.command(sessions, raw_ids[5], CommandState.AWAITING_FETCH, ANCIENT)
    dead = await rows.command(sessions, raw_ids[3], CommandState.DEAD, ANCIENT)
    dead_failure = await rows.failure(sessions, ANCIENT, raw_id=raw_ids[3], command_id=dead)
    auth_failure = await rows.failure(sessions, ANCIENT, raw_id=raw_ids[4], failure_class=FailureClass.AUTH)

    report = await prune(sessions, POLICY, TODAY)

    assert report.total == 0
    assert await rows.ids(sessions, commands.c.id) == {retrying, leased, awaiting, fetching, dead}
    assert await rows.ids(sessions, failures.c.id) == {dead_failure, auth_failure}
    assert await rows.ids(sessions, raw_payloads.c.id) == set(raw_ids)


async def test_dead_command_goes_with_its_resolved_failure(sessions) -> None:
    raw_id = await rows.raw(sessions, OLD)
    dead = await rows.command(sessions, raw_id, CommandState.DEAD, OLD)
    await rows.failure(sessions, OLD, raw_id=raw_id, command_id=dead, resolved=True)
    no_failure_raw = await rows.raw(sessions, OLD)
    # Dead without any failure row: nothing says an operator settled it, so it stays.
    unsettled = await rows.command(sessions, no_failure_raw, CommandState.DEAD, OLD)

    report = await prune(sessions, POLICY, TODAY)

    assert (report.commands, report.failures, report.raw_payloads) == (1, 1, 1)
    assert await rows.ids(sessions, commands.c.id) == {unsettled}
    assert await rows.ids(sessions, raw_payloads.c.id) == {no_failure_raw}


async def test_recent_replay_or_open_failure_keeps_an_old_command(sessions) -> None:
    raw_id, requeued_then_sent = await rows.dispatched(sessions, OLD)
    replayed = await rows.failure(
        sessions, OLD, raw_id=raw_id, command_id=requeued_then_sent, resolved=True, replayed_at=RECENT
    )
    other_raw, items_rejected = await rows.dispatched(sessions, OLD)
    open_failure = await rows.failure(sessions, OLD, raw_id=other_raw, command_id=items_rejected)

    assert (await prune(sessions, POLICY, TODAY)).total == 0

    assert await rows.ids(sessions, commands.c.id) == {requeued_then_sent, items_rejected}
    assert await rows.ids(sessions, failures.c.id) == {replayed, open_failure}
    assert await rows.ids(sessions, raw_payloads.c.id) == {raw_id, other_raw}


async def test_raw_payload_of_an_import_job_stays(sessions) -> None:
    upload = await rows.raw(sessions, OLD)
    await rows.import_job(sessions, upload, OLD)

    assert (await prune(sessions, POLICY, TODAY)).raw_payloads == 0
    assert await rows.ids(sessions, raw_payloads.c.id) == {upload}


async def test_dedupe_keys_stay_at_least_the_floor(sessions) -> None:
    await rows.dedupe_key(sessions, "within-floor", TODAY - DEDUPE_FLOOR + rows.days(1))
    await rows.dedupe_key(sessions, "past-floor", TODAY - DEDUPE_FLOOR - rows.days(1))
    short = RetentionPolicy(rows.days(1))

    report = await prune(sessions, short, TODAY)

    assert report.dedupe_keys == 1
    assert await rows.ids(sessions, dedupe_keys.c.dedupe_key) == {"within-floor"}
    assert (await prune(sessions, POLICY, TODAY + rows.days(20))).dedupe_keys == 0
    assert (await prune(sessions, POLICY, TODAY + rows.days(31))).dedupe_keys == 1


async def test_audit_rows_follow_their_own_retention(sessions) -> None:
    await rows.audit_row(sessions, TODAY - rows.days(91))
    await rows.audit_row(sessions, TODAY - rows.days(60))

    assert (await prune(sessions, POLICY, TODAY)).audit == 1
    assert await count(sessions, audit) == 1


async def test_zero_keeps_everything_forever(sessions) -> None:
    await rows.dispatched(sessions, ANCIENT)
    await rows.dedupe_key(sessions, "ancient", ANCIENT)
    await rows.audit_row(sessions, ANCIENT)
    forever = RetentionPolicy.from_seconds(0, 0)

    assert (forever.retention, forever.audit_retention, forever.dedupe_retention) == (None, None, None)
    assert (await prune(sessions, forever, TODAY)).total == 0


async def test_batches_loop_until_done_stepping_over_open_work(sessions) -> None:
    kept = set()
    for index in range(12):
        await rows.dispatched(sessions, OLD)
        await rows.dedupe_key(sessions, f"key-{index}", OLD)
        await rows.audit_row(sessions, ANCIENT)
        if index % 4 == 0:
            raw_id = await rows.raw(sessions, ANCIENT)
            kept.add(await rows.command(sessions, raw_id, CommandState.PENDING, ANCIENT))
    _, recent = await rows.dispatched(sessions, RECENT)

    report = await prune(sessions, POLICY, TODAY, batch=5)

    assert (report.commands, report.raw_payloads, report.dedupe_keys, report.audit) == (12, 12, 12, 12)
    assert await rows.ids(sessions, commands.c.id) == kept | {recent}
    assert await count(sessions, raw_payloads) == len(kept) + 1


async def test_a_stopping_pruner_ends_between_batches(sessions) -> None:
    for _ in range(12):
        await rows.dispatched(sessions, OLD)

    asked = []

    def stopping() -> bool:
        # Asked before the commands, then after each batch: stop after the second batch.
        asked.append(True)
        return len(asked) > 2

    report = await prune(sessions, POLICY, TODAY, batch=5, stopping=stopping)

    assert report.total == report.commands == 10
    assert await count(sessions, commands) == 2


async def test_pruner_sweeps_on_its_clock(sessions) -> None:
    await rows.dispatched(sessions, OLD)
    clock = iter([OLD, TODAY])
    pruner = GatewayPruner(sessions, POLICY, interval_s=3600, clock=clock.__next__)

    await pruner.sweep()
    assert await count(sessions, commands) == 1
    await pruner.sweep()
    assert await count(sessions, commands) == 0


class Accepting(CommandSender):
    async def send(self, target: str, body: bytes, idempotency_key: str) -> None:
        return None


async def test_a_delivery_after_its_key_was_pruned_is_sent_again_under_its_key(sessions) -> None:
    await load_mappings(sessions, MAPPED)
    first = delivery("inventory_movements.json")
    assert (await ingest(sessions, first, SECRETS, NOW, tenant="tenant-acme")).outcome == "accepted"
    dispatcher = Dispatcher(
        sessions, {"posgate.inventory.v1.InventoryService": Accepting()}, clock=lambda: NOW
    )
    assert await dispatcher.dispatch_due() == 1
    [original_key] = await rows.ids(sessions, commands.c.idempotency_key)

    later = NOW + rows.days(31)
    report = await prune(sessions, POLICY, later)
    assert (report.commands, report.raw_payloads, report.dedupe_keys) == (1, 1, 1)

    # The vendor sends the same event again, freshly signed: no key left, so it is new.
    again = replace(first, headers=sign(first.body, SECRET, later), received_at=later)
    result = await ingest(sessions, again, SECRETS, later, tenant="tenant-acme")
    assert result.outcome == "accepted"
    assert await rows.ids(sessions, commands.c.idempotency_key) == {original_key}
