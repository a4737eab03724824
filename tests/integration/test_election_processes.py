"""Leader election with every candidate its own OS process: real etcd, real Raft nodes.

Each scenario reads the events the candidates log (won, lost, fenced writes) and
asserts the invariants: one leader at a time, epochs that only grow, a leader
that lost its lease gets no write through.
"""

from __future__ import annotations

import asyncio
import itertools
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from election.raft import DEFAULT_TIMING as RAFT_TIMING
from tests.election_group import ElectionGroup, terms

pytestmark = pytest.mark.slow

ETCD_TTL = 2.0


@pytest.fixture(
    params=[
        pytest.param("raft", marks=pytest.mark.raft),
        pytest.param("etcd", marks=pytest.mark.etcd),
    ]
)
async def group(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ElectionGroup]:
    if request.param == "etcd":
        server = request.getfixturevalue("etcd_server")
        root = f"/e-{tmp_path.name}/"
        members = ElectionGroup("etcd", tmp_path, etcd=server.endpoint, root=root)
    else:
        members = ElectionGroup("raft", tmp_path)
    try:
        yield members
    finally:
        await members.stop()


def assert_no_overlap(events: list[dict[str, Any]], ended: dict[str, float]) -> None:
    """Terms never overlap in time, and a later term always has a larger epoch.

    ``ended`` gives when a member was killed (its open term ends there).
    """
    spans = [
        (name, epoch, won, min(end, ended.get(name, end)))
        for name, epoch, won, end in terms(events)
    ]
    for (n1, e1, _w1, end1), (n2, e2, w2, _end2) in itertools.pairwise(spans):
        assert e2 > e1, f"epoch went from {e1} ({n1}) to {e2} ({n2})"
        assert w2 >= end1, f"{n2} won epoch {e2} at {w2} while {n1} held {e1} until {end1}"


def lease_ttl(backend: str) -> float:
    return RAFT_TIMING.lease_ttl if backend == "raft" else ETCD_TTL


async def test_one_leader_and_no_flapping_over_a_quiet_minute(group: ElectionGroup) -> None:
    await group.start()
    first = await group.wait_won()
    await asyncio.sleep(60)
    events = group.events()
    wins = [e for e in events if e["event"] == "won"]
    losses = [e for e in events if e["event"] == "lost"]
    assert [(w["name"], w["epoch"]) for w in wins] == [(first["name"], first["epoch"])]
    assert losses == []
    assert group.leaders() == [first["name"]]
    writes = [e for e in events if e["event"] == "write"]
    assert len(writes) > 100 and all(w["accepted"] for w in writes)


async def test_sigkill_of_the_leader_elects_another_with_a_larger_epoch(
    group: ElectionGroup,
) -> None:
    await group.start()
    old = await group.wait_won()
    killed_at = time.time()
    group.member(old["name"]).signal(signal.SIGKILL)
    new = await group.wait_won(after=killed_at, exclude=old["name"])
    assert new["epoch"] > old["epoch"]
    assert_no_overlap(group.events(), {old["name"]: killed_at})


async def test_sigterm_of_the_leader_hands_over(group: ElectionGroup) -> None:
    await group.start()
    old = await group.wait_won()
    stopped_at = time.time()
    group.member(old["name"]).signal(signal.SIGTERM)
    new = await group.wait_won(after=stopped_at, exclude=old["name"])
    assert new["epoch"] > old["epoch"]
    events = await group.wait_for(
        lambda evs: any(e["event"] == "resigned" and e["name"] == old["name"] for e in evs)
    )
    assert_no_overlap(events, {})
    # the handover did not wait for the lease to run out
    assert new["ts"] - stopped_at < lease_ttl(group.backend)


async def test_a_paused_leader_learns_it_lost_before_acting(group: ElectionGroup) -> None:
    await group.start()
    old = await group.wait_won()
    paused = group.member(old["name"])
    paused_at = time.time()
    paused.signal(signal.SIGSTOP)
    new = await group.wait_won(
        after=paused_at, exclude=old["name"], timeout=lease_ttl(group.backend) + 20
    )
    assert new["epoch"] > old["epoch"]
    resumed_at = time.time()
    paused.signal(signal.SIGCONT)
    events = await group.wait_for(
        lambda evs: sum(e["event"] == "stale_write" and e["name"] == old["name"] for e in evs) >= 5
    )
    mine = [e for e in events if e["name"] == old["name"]]
    lost = next(e for e in mine if e["event"] == "lost")
    assert lost["epoch"] == old["epoch"]
    # no write was started as leader after the resume: the term check came first
    acted = [e for e in mine if e["event"] == "write" and e["started"] >= resumed_at]
    assert not any(e["accepted"] for e in acted), acted
    stale = [e for e in mine if e["event"] == "stale_write"]
    assert stale and not any(e["accepted"] for e in stale), stale
    assert_no_overlap(events, {})


async def test_full_restart_of_every_candidate_keeps_epochs_growing(
    group: ElectionGroup,
) -> None:
    await group.start()
    first = await group.wait_won()
    for member in group.members:
        member.signal(signal.SIGKILL)
        assert member.proc is not None
        member.proc.wait(10)
    restarted_at = time.time()
    await group.restart(*group.members)
    second = await group.wait_won(after=restarted_at)
    assert second["epoch"] > first["epoch"]


@pytest.mark.etcd
async def test_etcd_killed_and_restarted_under_a_leader(etcd_server: Any, tmp_path: Path) -> None:
    from tests.etcd_server import EtcdServer

    server = EtcdServer(tmp_path / "own-etcd")
    server.start()
    group = ElectionGroup("etcd", tmp_path / "group", etcd=server.endpoint, root="/k/")
    try:
        await group.start()
        await group.wait_won()
        server.kill()
        await asyncio.sleep(1.0)
        server.restart()
        settle_from = time.time()
        await asyncio.sleep(ETCD_TTL * 3)
        events = group.events()
        assert_no_overlap(events, {})
        assert len(group.leaders()) == 1, group.leaders()
        epochs = [e["epoch"] for e in events if e["event"] == "won"]
        assert len(epochs) == len(set(epochs))
        # after it settled the leader writes again, and its writes are accepted
        leader = group.leaders()[0]
        writes = [
            e
            for e in events
            if e["event"] == "write" and e["name"] == leader and e["ts"] > settle_from + ETCD_TTL
        ]
        assert writes and all(w["accepted"] for w in writes)
    finally:
        await group.stop()
        server.stop()


@pytest.mark.raft
async def test_an_isolated_raft_leader_stops_within_its_renew_deadline(tmp_path: Path) -> None:
    group = ElectionGroup("raft", tmp_path)
    try:
        await group.start(proxied=True)
        old = await group.wait_won()
        leader = group.member(old["name"])
        await asyncio.sleep(0.5)  # a few renewals through the proxies first
        isolated_at = time.time()
        for proxy in leader.proxies:
            proxy.blackhole()
        events = await group.wait_for(
            lambda evs: any(e["event"] == "lost" and e["name"] == old["name"] for e in evs)
        )
        lost = next(e for e in events if e["event"] == "lost" and e["name"] == old["name"])
        # it stopped on its own renew deadline, counted from a renewal sent before isolation
        assert lost["ended"] - isolated_at <= RAFT_TIMING.renew_deadline + 0.5, lost
        new = await group.wait_won(after=isolated_at, exclude=old["name"])
        assert new["epoch"] > old["epoch"]
        assert new["ts"] >= lost["ended"]
        writes = [
            e
            for e in group.events()
            if e["name"] == old["name"]
            and e["event"] in ("write", "stale_write")
            and e["ts"] > new["ts"]
        ]
        assert not any(e["accepted"] for e in writes), writes
        for proxy in leader.proxies:
            proxy.heal()
        await asyncio.sleep(2)
        assert group.leaders() == [new["name"]]
    finally:
        await group.stop()
