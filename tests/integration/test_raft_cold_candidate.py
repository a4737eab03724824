"""A replica not ready to lead (its cache still being listed after a start) defers to one
that is, on real Raft nodes: three nodes in this process on loopback, one candidate each.

The case that matters is the not-ready one on the Raft leader's node: it is the one that
expires a silent lease, and it used to take the lease in the same command."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from election.raft import RaftCandidate
from election.term import Term
from ha_sc.kv.raft import RaftKv
from tests.net import free_addresses
from tests.waiting import eventually

pytestmark = [pytest.mark.raft, pytest.mark.timeout(90)]

WAIT = 20.0


@pytest.fixture
async def nodes(tmp_path: Path) -> AsyncIterator[list[RaftKv]]:
    addresses = free_addresses(3)
    kvs = [
        RaftKv(address, [a for a in addresses if a != address], tmp_path / f"node{n}")
        for n, address in enumerate(addresses)
    ]
    try:
        for kv in kvs:
            await kv.wait_ready()
        yield kvs
    finally:
        for kv in kvs:
            await kv.close()


async def raft_leader_first(nodes: list[RaftKv]) -> list[RaftKv]:
    await eventually(lambda: any(n.is_raft_leader() for n in nodes), what="a Raft leader")
    leader = next(n for n in nodes if n.is_raft_leader())
    return [leader, *(n for n in nodes if n is not leader)]


class Campaign:
    """Candidates running in this event loop, closed at the end."""

    def __init__(self) -> None:
        self.running: dict[RaftCandidate, asyncio.Task[None]] = {}

    def start(self, node: RaftKv, name: str, ready: Callable[[], bool]) -> RaftCandidate:
        candidate = RaftCandidate(node, election="sc", name=name, address=name, ready=ready)
        self.running[candidate] = asyncio.create_task(candidate.run(), name=f"campaign-{name}")
        return candidate

    async def crash(self, candidate: RaftCandidate) -> None:
        """The candidate's process dies: no resignation, its renewals stop. (A cancel that
        meets a timeout's expiry can be swallowed on Python 3.11: cancel until it ended.)"""
        task = self.running.pop(candidate)
        while not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=0.05)

    async def close(self) -> None:
        for candidate, task in self.running.items():
            await candidate.close()
            task.cancel()
        await asyncio.gather(*self.running.values(), return_exceptions=True)


@dataclass(frozen=True)
class Setting:
    """The nodes, the Raft leader's first, and a holder on another node that has won."""

    on_raft_leader: RaftKv
    other: RaftKv
    third: RaftKv
    holder: RaftCandidate
    first: Term


async def a_holder_off_the_raft_leader(nodes: list[RaftKv], campaign: Campaign) -> Setting:
    on_raft_leader, other, third = await raft_leader_first(nodes)
    holder = campaign.start(other, "holder", lambda: True)
    first = await asyncio.wait_for(holder.wait_won(), WAIT)
    return Setting(on_raft_leader, other, third, holder, first)


@pytest.fixture
async def campaign() -> AsyncIterator[Campaign]:
    running = Campaign()
    try:
        yield running
    finally:
        await running.close()


async def test_a_silent_lease_goes_to_a_ready_replica_not_to_the_raft_leaders_cold_one(
    nodes: list[RaftKv], campaign: Campaign
) -> None:
    at = await a_holder_off_the_raft_leader(nodes, campaign)
    on_raft_leader, third, holder, first = at.on_raft_leader, at.third, at.holder, at.first
    cold = campaign.start(on_raft_leader, "cold", lambda: False)
    warm = campaign.start(third, "warm", lambda: True)
    await asyncio.sleep(0.3)  # both watch the lease
    await campaign.crash(holder)
    won = await asyncio.wait_for(warm.wait_won(), WAIT)
    assert won.epoch > first.epoch
    assert cold.term is None
    assert on_raft_leader.is_raft_leader(), "Raft leadership moved: the cold one was not tested"


async def test_with_no_ready_replica_a_cold_one_takes_the_lease(
    nodes: list[RaftKv], campaign: Campaign
) -> None:
    at = await a_holder_off_the_raft_leader(nodes, campaign)
    on_raft_leader, holder, first = at.on_raft_leader, at.holder, at.first
    cold = campaign.start(on_raft_leader, "cold", lambda: False)
    await asyncio.sleep(0.3)
    await campaign.crash(holder)
    won = await asyncio.wait_for(cold.wait_won(), WAIT)
    assert won.epoch > first.epoch


async def test_a_handover_passes_over_a_replica_not_ready(
    nodes: list[RaftKv], campaign: Campaign
) -> None:
    at = await a_holder_off_the_raft_leader(nodes, campaign)
    on_raft_leader, third, holder, first = at.on_raft_leader, at.third, at.holder, at.first
    cold = campaign.start(on_raft_leader, "cold", lambda: False)  # preferred if it were ready
    warm = campaign.start(third, "warm", lambda: True)
    await asyncio.sleep(0.3)  # both enlisted, had they been ready
    await holder.close()  # resigns: hands the lease over
    won = await asyncio.wait_for(warm.wait_won(), WAIT)
    assert won.epoch > first.epoch
    assert cold.term is None


async def test_a_cold_replica_becomes_eligible_once_ready(
    nodes: list[RaftKv], campaign: Campaign
) -> None:
    at = await a_holder_off_the_raft_leader(nodes, campaign)
    on_raft_leader, holder, first = at.on_raft_leader, at.holder, at.first
    listed = asyncio.Event()
    late = campaign.start(on_raft_leader, "late", listed.is_set)
    await asyncio.sleep(0.3)
    listed.set()
    await asyncio.sleep(0.3)  # enlisted now
    await holder.close()
    won = await asyncio.wait_for(late.wait_won(), WAIT)
    assert won.epoch > first.epoch
