"""Commands stored leased to the gateway's own dispatcher are sent without a claim, and never lost."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from posgate.gateway.claims import Claimed
from posgate.gateway.dispatch import Dispatcher
from posgate.gateway.ingestor import Ingestor
from posgate.gateway.tables import CommandState, commands
from tests.integration.gateway.conftest import MAPPED, load_mappings
from tests.integration.gateway.test_dispatch import INVENTORY, ScriptedSender
from tests.integration.gateway.test_ingestor import CountingSessions, movement


class Collecting:
    """A `LeasingDispatcher` that only keeps what it is handed (its process then dies)."""

    lease = timedelta(seconds=15)

    def __init__(self) -> None:
        self.handed: list[Claimed] = []

    def hand_over(self, claimed: list[Claimed]) -> None:
        self.handed.extend(claimed)


async def rows(sessions):
    async with sessions() as session:
        return (await session.execute(select(commands).order_by(commands.c.id))).all()


async def test_new_commands_are_stored_leased_and_handed_over_once(sessions) -> None:
    await load_mappings(sessions, MAPPED)
    dispatcher = Collecting()
    ingestor = Ingestor(sessions, dispatcher=dispatcher)
    before = datetime.now(UTC)

    results = await asyncio.gather(*(ingestor.submit(movement(f"m-{n}")) for n in range(3)))
    again = await ingestor.submit(movement("m-0"))  # a vendor retry: nothing new to hand over

    stored = await rows(sessions)
    assert again.outcome == "duplicate"
    assert sorted(c.id for c in dispatcher.handed) == [row.id for row in stored]
    assert {c.id for c in dispatcher.handed} == {i for r in results for i in r.command_ids}
    by_id = {row.id: row for row in stored}
    for claim in dispatcher.handed:
        row = by_id[claim.id]
        assert (row.state, row.attempts) == (CommandState.PENDING, 1)
        assert row.next_attempt_at >= before + Collecting.lease
        assert claim.body == bytes(row.body)
        assert (claim.provider, claim.topic, claim.raw_payload_id) == (
            "standard",
            "inventory",
            row.raw_payload_id,
        )


async def test_handed_over_commands_are_sent_and_settled_without_a_claim(sessions) -> None:
    await load_mappings(sessions, MAPPED)
    sender = ScriptedSender()
    dispatcher = Dispatcher(sessions, {INVENTORY: sender}, poll_interval=60)
    task = asyncio.create_task(dispatcher.run())
    await asyncio.sleep(0.05)  # its first round finds nothing and waits a minute
    try:
        result = await Ingestor(sessions, dispatcher=dispatcher).submit(movement("m-1"))
        for _ in range(500):
            if (await rows(sessions))[0].state == CommandState.DISPATCHED:
                break
            await asyncio.sleep(0.01)
    finally:
        dispatcher.stop()
        await asyncio.wait_for(task, 10)

    [row] = await rows(sessions)
    assert row.id in result.command_ids
    assert (row.state, row.attempts) == (CommandState.DISPATCHED, 1)
    assert len(sender.calls) == 1


async def test_commands_handed_to_a_dead_process_are_claimed_when_the_lease_ends(sessions) -> None:
    await load_mappings(sessions, MAPPED)
    dead = Collecting()
    await Ingestor(sessions, dispatcher=dead).submit(movement("m-1"))
    sender = ScriptedSender()
    now = datetime.now(UTC)
    successor = Dispatcher(sessions, {INVENTORY: sender}, clock=lambda: now)

    assert await successor.dispatch_due() == 0  # leased to the dead process
    now += Collecting.lease + timedelta(seconds=1)
    assert await successor.dispatch_due() == 1

    [row] = await rows(sessions)
    assert (row.state, row.attempts) == (CommandState.DISPATCHED, 2)
    assert len(dead.handed) == 1
    assert len(sender.calls) == 1


async def test_rounds_close_together_share_one_outcome_record_and_claim_nothing(sessions) -> None:
    await load_mappings(sessions, MAPPED)
    collected = Collecting()
    ingestor = Ingestor(sessions, dispatcher=collected)
    for n in range(5):
        await ingestor.submit(movement(f"m-{n}"))
    await ingestor.close()
    sender = ScriptedSender(RuntimeError("inventory unavailable"))
    counting = CountingSessions(sessions)
    dispatcher = Dispatcher(counting, {INVENTORY: sender}, poll_interval=60, record_spacing=0.5)
    task = asyncio.create_task(dispatcher.run())
    try:
        await asyncio.sleep(0.05)  # its first round claims nothing (all leased) and waits
        assert counting.opened == 1
        for claim in collected.handed:  # five rounds, one command each
            dispatcher.hand_over([claim])
            await asyncio.sleep(0.01)
        assert len(sender.calls) == 5
        assert counting.opened == 1  # sent, recorded later, and no claim for the hand-overs
        for _ in range(200):
            if counting.opened > 1:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
    finally:
        dispatcher.stop()
        await asyncio.wait_for(task, 10)

    assert counting.opened == 2  # the five rounds' outcomes: one transaction
    states = [(row.state, row.last_error is not None) for row in await rows(sessions)]
    # The failed send is kept for a retry, the others are marked sent.
    assert sorted(states) == sorted([(CommandState.DISPATCHED, False)] * 4 + [(CommandState.PENDING, True)])


class RoundTimes:
    """A batch sender that notes when each round reached it and how many commands it carried."""

    def __init__(self) -> None:
        self.rounds: list[tuple[float, int]] = []

    async def send(self, target: str, body: bytes, idempotency_key: str) -> None:
        self.rounds.append((time.monotonic(), 1))

    async def send_batch(self, claimed: Sequence[Claimed]) -> list[Exception | None]:
        self.rounds.append((time.monotonic(), len(claimed)))
        return [None] * len(claimed)


async def handed_over(sessions, count: int) -> list[Claimed]:
    """`count` commands stored and leased to a process that only keeps them."""
    await load_mappings(sessions, MAPPED)
    collected = Collecting()
    ingestor = Ingestor(sessions, dispatcher=collected)
    for n in range(count):
        await ingestor.submit(movement(f"m-{n}"))
    await ingestor.close()
    return collected.handed


async def rounds_of(dispatcher: Dispatcher, sender: RoundTimes, *handovers: list[Claimed]):
    """Hand each list over once the round before it reached the sender; the rounds' times and sizes."""
    task = asyncio.create_task(dispatcher.run())
    try:
        await asyncio.sleep(0.05)  # its first round claims nothing (all leased) and waits
        for number, claims in enumerate(handovers, 1):
            dispatcher.hand_over(claims)
            for _ in range(500):
                if len(sender.rounds) >= number:
                    break
                await asyncio.sleep(0.005)
    finally:
        dispatcher.stop()
        await asyncio.wait_for(task, 10)
    return sender.rounds


async def test_after_a_round_the_next_waits_in_proportion_to_what_it_sent_up_to_a_cap(sessions) -> None:
    claims = await handed_over(sessions, 6)
    sender = RoundTimes()
    dispatcher = Dispatcher(
        sessions, {INVENTORY: sender}, poll_interval=60, gap_per_command=0.1, most_gap=0.15
    )

    (first, three), (second, two), (third, one) = await rounds_of(
        dispatcher, sender, claims[:3], claims[3:5], claims[5:]
    )

    assert (three, two, one) == (3, 2, 1)
    # Three commands: min(0.3, 0.15) s; two: 0.15 s again. A little slack below for the time
    # between a round's start and its send.
    assert 0.13 <= second - first < 0.28
    assert third - second >= 0.13


async def test_a_full_batch_handed_over_during_a_gap_goes_at_once(sessions) -> None:
    claims = await handed_over(sessions, 4)
    sender = RoundTimes()
    dispatcher = Dispatcher(
        sessions, {INVENTORY: sender}, poll_interval=60, batch=2, gap_per_command=1.0, most_gap=5.0
    )

    (first, two), (second, also_two) = await rounds_of(dispatcher, sender, claims[:2], claims[2:])

    assert (two, also_two) == (2, 2)
    assert second - first < 1.0  # not the 2 s gap the first round asked for
