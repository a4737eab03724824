"""A candidate on its own thread and loop, seen from the main loop through mirrored terms."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from election.leadership import Leadership
from election.lease_table import LeaseTable
from election.memory import MemoryCandidate
from election.threaded import MirroredTerm, ThreadedCandidate
from election.timing import ElectionTiming
from tests.waiting import eventually

pytestmark = pytest.mark.timeout(15)


class BusyLoopCandidate(MemoryCandidate):
    """Records the thread its campaign runs on."""

    ran_on: str = ""

    async def run(self) -> None:
        self.ran_on = threading.current_thread().name
        await super().run()


def candidate(table: LeaseTable, name: str = "sc-a") -> tuple[BusyLoopCandidate, ThreadedCandidate]:
    inner = BusyLoopCandidate(table, election="sc", name=name, address=f"{name}-addr")
    return inner, ThreadedCandidate(inner)


async def test_the_campaign_runs_on_its_own_thread_and_the_term_mirrors_it() -> None:
    table = LeaseTable()
    inner, threaded = candidate(table)
    run = asyncio.create_task(threaded.run(), name="election")
    try:
        term = await asyncio.wait_for(threaded.wait_won(), 5)
        assert isinstance(term, MirroredTerm)
        assert inner.ran_on == "election-sc-a"
        assert term.is_valid() and term.epoch == 1
        assert threaded.term is term
        leader = threaded.leader()
        assert leader is not None and leader.candidate == "sc-a"

        await threaded.resign()  # on the election loop; the mirror learns of it
        await asyncio.wait_for(term.lost.wait(), 5)
        assert term.lost_reason == "resigned"
        assert not term.is_valid()
        assert threaded.term is None
        assert table.holder("sc") is None
    finally:
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)


class Renewing(MemoryCandidate):
    """Renews every 50 ms; stops acting 200 ms after its last renewal was sent."""

    def __init__(self, table: LeaseTable) -> None:
        super().__init__(table, election="sc", name="sc-r", address="")
        timing = ElectionTiming(lease_ttl=0.3, renew_deadline=0.2, renew_interval=0.05)
        self.leadership = Leadership("sc", "sc-r", timing)

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tasks:
            watchdog = tasks.create_task(self.leadership.watchdog(), name="watchdog")
            holder = self.table.acquire("sc", self.name, self.address)
            assert holder is not None
            self.leadership.win(holder.epoch, time.monotonic())
            try:
                while not self._closing.is_set():
                    sent = time.monotonic()
                    await asyncio.sleep(0.05)
                    if self.leadership.held is not None:
                        self.leadership.renewed(sent)
            finally:
                watchdog.cancel()


async def test_a_blocked_main_loop_does_not_cost_the_lease() -> None:
    threaded = ThreadedCandidate(Renewing(LeaseTable()))
    run = asyncio.create_task(threaded.run(), name="election")
    try:
        term = await asyncio.wait_for(threaded.wait_won(), 5)
        # the main loop is stuck for 2.5 renew deadlines; renewals go on on their thread
        time.sleep(0.5)  # noqa: ASYNC251 - blocking the loop is the point
        assert term.is_valid()
        await asyncio.sleep(0.1)
        assert not term.lost.is_set()
    finally:
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)


async def test_ending_the_mirror_ends_the_candidates_term() -> None:
    table = LeaseTable()
    inner, threaded = candidate(table)
    run = asyncio.create_task(threaded.run(), name="election")
    try:
        term = await asyncio.wait_for(threaded.wait_won(), 5)
        inner_term = inner.leadership.term
        assert inner_term is not None
        term.end("a write was refused: a newer epoch leads")
        assert not term.is_valid()
        await eventually(inner_term.lost.is_set, what="the inner term lost")
        assert inner_term.lost_reason == "a write was refused: a newer epoch leads"
    finally:
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)


async def test_cancelling_run_stops_the_thread() -> None:
    _, threaded = candidate(LeaseTable())
    run = asyncio.create_task(threaded.run(), name="election")
    await asyncio.wait_for(threaded.wait_won(), 5)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert not any(t.name == "election-sc-a" and t.is_alive() for t in threading.enumerate())


async def test_a_failing_campaign_fails_run_on_the_main_loop() -> None:
    class Failing(MemoryCandidate):
        async def run(self) -> None:
            raise RuntimeError("campaign broke")

    threaded = ThreadedCandidate(Failing(LeaseTable(), election="sc", name="sc-x", address=""))
    with pytest.raises(RuntimeError, match="campaign broke"):
        await asyncio.wait_for(threaded.run(), 5)
