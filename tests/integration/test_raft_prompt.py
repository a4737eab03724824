"""A Raft leader sends a submitted command in the tick that takes it, a submitted
command wakes its Raft thread, and a leader flushes its journal after its
append-entries leave (election/raft_prompt.py): two real nodes on loopback with
journals on disk, ticked by hand, with append-entries and ticks far apart."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pysyncobj import replicated

from election.raft_append import RaftSyncObj
from election.raft_node import raft_conf
from tests.net import free_addresses

pytestmark = pytest.mark.raft

HEARTBEAT = 0.5
"""Seconds between a leader's append-entries when nothing is submitted."""


class Counter(RaftSyncObj):
    def __init__(self, address: str, partner: str, journal: Path) -> None:
        conf = raft_conf(
            address,
            journalFile=str(journal),
            autoTick=False,
            appendEntriesPeriod=HEARTBEAT,
            raftMinTimeout=3.5 * HEARTBEAT,
            raftMaxTimeout=4 * HEARTBEAT,
            connectionTimeout=10 * HEARTBEAT,
        )
        super().__init__(address, [partner], conf=conf)
        self.count = 0

    @replicated  # type: ignore[misc]
    def add(self) -> int:
        self.count += 1
        return self.count

    def log_index(self) -> int:
        return int(self._SyncObj__getCurrentLogIndex())


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[Counter, Counter]]:
    """(leader, follower), the follower holding every entry the leader has, all of them
    committed (so nothing is in flight)."""
    a, b = free_addresses(2)
    nodes = [Counter(a, b, tmp_path / "a.journal"), Counter(b, a, tmp_path / "b.journal")]
    try:
        for _ in range(2000):  # about 10 s at most: an election, then a heartbeat
            for node in nodes:
                node.doTick(0.005)
            leaders = [n for n in nodes if n._isLeader()]
            if leaders and all(n.log_index() == leaders[0].log_index() for n in nodes):
                leader = leaders[0]
                if leader.getStatus()["commit_idx"] != leader.log_index():
                    continue
                follower = next(n for n in nodes if n is not leader)
                if follower._getLeader() is not None:
                    break
        else:
            pytest.fail("the two nodes did not settle on a leader")
        yield leader, follower
    finally:
        for node in nodes:
            node.destroy()


def _submit(node: Counter) -> list[Any]:
    answers: list[Any] = []
    node.add(callback=lambda result, error: answers.append((result, error)))
    return answers


def test_a_submitted_command_leaves_in_the_tick_that_takes_it(
    pair: tuple[Counter, Counter],
) -> None:
    leader, follower = pair
    leader._SyncObj__sendAppendEntries()  # the next heartbeat is HEARTBEAT away
    before = follower.log_index()
    _submit(leader)
    leader.doTick(0.0)  # takes the command; the heartbeat is not due
    for _ in range(20):  # 1 s at most
        follower.doTick(0.05)
        if follower.log_index() > before:
            break
    assert follower.log_index() == before + 1


def test_a_submitted_command_wakes_the_raft_thread(pair: tuple[Counter, Counter]) -> None:
    leader, _ = pair
    leader.doTick(0.0)  # any pending wake-up consumed
    ticking = threading.Thread(target=leader.doTick, args=(60.0,), name="raft-tick")
    ticking.start()
    try:
        _submit(leader)
        ticking.join(timeout=30.0)
        assert not ticking.is_alive(), "the tick waited out its poll"
    finally:
        ticking.join(timeout=90.0)


def test_a_leader_flushes_its_journal_after_its_append_entries_leave(
    pair: tuple[Counter, Counter],
) -> None:
    leader, follower = pair
    journal, transport = leader.journal, leader._SyncObj__transport
    assert journal is not None
    events: list[str] = []
    flush, send = journal.flush, transport.send

    def flushed() -> None:
        flush()
        events.append("flush")

    def sent(node: Any, message: Any) -> bool:
        done = bool(send(node, message))
        events.append(str(message.get("type")) if isinstance(message, dict) else "other")
        return done

    journal.flush = flushed  # type: ignore[method-assign]
    transport.send = sent
    answers = _submit(leader)
    leader.doTick(0.0)
    assert events == ["append_entries", "flush"]
    for _ in range(40):  # 2 s at most: the follower answers, the leader commits
        follower.doTick(0.025)
        leader.doTick(0.025)
        if answers:
            break
    assert answers == [(1, 0)]  # committed (FAIL_REASON.SUCCESS), with the leader's copy on disk
    assert not journal.pending


def test_a_follower_learns_a_commit_without_waiting_for_a_heartbeat(
    pair: tuple[Counter, Counter],
) -> None:
    leader, follower = pair
    answers = _submit(leader)
    for _ in range(8):  # well within HEARTBEAT: no append-entries falls due meanwhile
        leader.doTick(0.02)
        follower.doTick(0.02)
        committed = leader.getStatus()["commit_idx"]
        if answers and follower.getStatus()["commit_idx"] == committed:
            break
    assert answers == [(1, 0)]
    assert follower.getStatus()["commit_idx"] == leader.getStatus()["commit_idx"]
