"""The dispatcher: retries with backoff, dead-letters, and loses nothing across restarts."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select

from posgate.bus.retry import Backoff
from posgate.gateway.dispatch import Dispatcher, release_awaiting
from posgate.gateway.pipeline import ingest
from posgate.gateway.sending import CommandSender, ItemsRejected, PermanentSendError, TransientSendError
from posgate.gateway.tables import CommandState, commands, failures
from tests.integration.gateway.conftest import MAPPED, SECRETS, count, delivery, load_mappings
from tests.unit.gateway.adapters.standard.cases import NOW

INVENTORY = "posgate.inventory.v1.InventoryService"


class ScriptedSender(CommandSender):
    """Raises the scripted errors in turn, then succeeds; records every call."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls: list[tuple[str, bytes, str]] = []

    async def send(self, target: str, body: bytes, idempotency_key: str) -> None:
        self.calls.append((target, body, idempotency_key))
        if self.errors:
            raise self.errors.pop(0)


class HangingSender(CommandSender):
    """Never answers: the process dies while the call is in flight."""

    def __init__(self) -> None:
        self.called = asyncio.Event()

    async def send(self, target: str, body: bytes, idempotency_key: str) -> None:
        self.called.set()
        await asyncio.Event().wait()


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self):
        return self.now


async def _one_pending(sessions) -> None:
    await load_mappings(sessions, MAPPED)
    result = await ingest(sessions, delivery("inventory_movements.json"), SECRETS, NOW, tenant="tenant-acme")
    assert result.outcome == "accepted"


async def _command(sessions):
    async with sessions() as session:
        return (await session.execute(select(commands))).one()


def _dispatcher(sessions, sender, clock, **options) -> Dispatcher:
    backoff = Backoff(base_s=1.0, cap_s=60.0)
    return Dispatcher(sessions, {INVENTORY: sender}, backoff=backoff, clock=clock, **options)


async def test_transient_failures_back_off_then_succeed(sessions) -> None:
    await _one_pending(sessions)
    sender = ScriptedSender(TransientSendError("UNAVAILABLE"), TransientSendError("DEADLINE_EXCEEDED"))
    clock = Clock()
    dispatcher = _dispatcher(sessions, sender, clock, max_attempts=5)

    assert await dispatcher.dispatch_due() == 1
    first = await _command(sessions)
    assert (first.state, first.attempts, first.last_error) == (
        "pending",
        1,
        "TransientSendError: UNAVAILABLE",
    )
    assert first.next_attempt_at > NOW
    assert await dispatcher.dispatch_due() == 0  # not due yet

    clock.now = first.next_attempt_at
    assert await dispatcher.dispatch_due() == 1
    second = await _command(sessions)
    assert second.next_attempt_at - clock.now > timedelta(seconds=1)  # grew: 2**1 s, jittered down to >= 1 s
    clock.now = second.next_attempt_at
    assert await dispatcher.dispatch_due() == 1

    done = await _command(sessions)
    assert (done.state, done.attempts) == (CommandState.DISPATCHED, 3)
    assert {key for _, _, key in sender.calls} == {done.idempotency_key}
    assert len(sender.calls) == 3
    assert await count(sessions, failures) == 0


async def test_permanent_failure_is_dead_at_once_with_a_processing_failure(sessions) -> None:
    await _one_pending(sessions)
    dispatcher = _dispatcher(sessions, ScriptedSender(PermanentSendError("INVALID_ARGUMENT: bad")), Clock())

    await dispatcher.dispatch_due()

    dead = await _command(sessions)
    assert dead.state == CommandState.DEAD
    async with sessions() as session:
        failure = (await session.execute(select(failures))).one()
    assert (failure.failure_class, failure.reason, failure.command_id) == ("processing", "rejected", dead.id)
    assert failure.tenant_id == "tenant-acme"
    assert failure.store_id == "store-berlin"


async def test_exhausted_attempts_are_dead(sessions) -> None:
    await _one_pending(sessions)
    clock = Clock()
    sender = ScriptedSender(*(TransientSendError("UNAVAILABLE") for _ in range(5)))
    dispatcher = _dispatcher(sessions, sender, clock, max_attempts=2)

    await dispatcher.dispatch_due()
    clock.now += timedelta(hours=1)
    await dispatcher.dispatch_due()
    clock.now += timedelta(hours=1)
    assert await dispatcher.dispatch_due() == 0

    assert (await _command(sessions)).state == CommandState.DEAD
    assert await count(sessions, failures, failures.c.reason == "attempts_exhausted") == 1
    assert len(sender.calls) == 2


async def test_rejected_items_are_recorded_not_retried(sessions) -> None:
    await _one_pending(sessions)
    dispatcher = _dispatcher(sessions, ScriptedSender(ItemsRejected(["k1: unknown_sku"])), Clock())

    await dispatcher.dispatch_due()

    assert (await _command(sessions)).state == CommandState.DISPATCHED
    async with sessions() as session:
        failure = (await session.execute(select(failures))).one()
    assert (failure.failure_class, failure.reason) == ("processing", "items_rejected")
    assert "unknown_sku" in failure.detail


async def test_command_in_flight_when_the_process_dies_is_sent_by_a_new_dispatcher(sessions) -> None:
    await _one_pending(sessions)
    clock = Clock()
    hanging = HangingSender()
    old = _dispatcher(sessions, hanging, clock, lease=timedelta(seconds=30))
    task = asyncio.create_task(old.dispatch_due())
    await asyncio.wait_for(hanging.called.wait(), 10)
    task.cancel()  # the process stops mid-call

    fresh_sender = ScriptedSender()
    fresh = _dispatcher(sessions, fresh_sender, clock)
    assert await fresh.dispatch_due() == 0  # still leased by the dead dispatcher
    clock.now += timedelta(seconds=31)
    assert await fresh.dispatch_due() == 1

    assert (await _command(sessions)).state == CommandState.DISPATCHED
    assert len(fresh_sender.calls) == 1


async def test_run_dispatches_until_stopped(sessions) -> None:
    await _one_pending(sessions)
    sender = ScriptedSender()
    dispatcher = Dispatcher(sessions, {INVENTORY: sender}, poll_interval=0.01)
    task = asyncio.create_task(dispatcher.run())
    for _ in range(500):
        if sender.calls:
            break
        await asyncio.sleep(0.01)
    dispatcher.stop()
    await asyncio.wait_for(task, 10)

    assert (await _command(sessions)).state == CommandState.DISPATCHED


async def test_awaiting_commands_are_never_claimed_until_released(sessions) -> None:
    await load_mappings(sessions, MAPPED)
    await ingest(sessions, delivery("store_status.json"), SECRETS, NOW, tenant="tenant-acme")
    stores = "posgate.stores.v1.StoreService"
    sender = ScriptedSender()
    dispatcher = Dispatcher(sessions, {INVENTORY: sender, stores: sender}, clock=Clock())

    assert await dispatcher.dispatch_due() == 0
    async with sessions() as session:
        assert await release_awaiting(session, stores, NOW) == 1
        await session.commit()
    assert await dispatcher.dispatch_due() == 1
    assert (await _command(sessions)).state == CommandState.DISPATCHED
