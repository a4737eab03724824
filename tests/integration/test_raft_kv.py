"""Raft KV nodes killed, frozen and restarted for real: separate OS processes, signals."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from election.guard import Guard
from ha_sc.kv.api import CreateOp, KeyExists, KvError
from ha_sc.kv.raft import RaftKv, RaftSettings
from ha_sc.kv.state_machine import op_rows
from tests.net import free_addresses
from tests.raft_peer_process import PeerProcess, depose_leader
from tests.waiting import eventually

pytestmark = [pytest.mark.raft, pytest.mark.slow]


@pytest.fixture
def group(tmp_path: Path) -> Iterator[tuple[list[str], list[PeerProcess]]]:
    """Addresses of three nodes; nodes 1 and 2 run as processes, node 0 in the test."""
    addresses = free_addresses(3)
    peers = [
        PeerProcess(
            addresses[i], [a for a in addresses if a != addresses[i]], tmp_path / f"node{i}"
        )
        for i in (1, 2)
    ]
    for peer in peers:
        peer.start()
    try:
        yield addresses, peers
    finally:
        for peer in peers:
            peer.kill()


def local_node(
    addresses: list[str], data_dir: Path, settings: RaftSettings | None = None
) -> RaftKv:
    return RaftKv(addresses[0], addresses[1:], data_dir, settings=settings)


async def test_killed_node_restarts_and_catches_up(
    group: tuple[list[str], list[PeerProcess]], tmp_path: Path
) -> None:
    addresses, (peer1, peer2) = group
    node = local_node(addresses, tmp_path / "node0")
    try:
        await node.wait_ready()
        for n in range(50):
            await node.create("topics", f"before-{n}", b"{}")
        await peer1.wait_applied(node.revision)
        peer1.kill()
        for n in range(50):  # the majority (node 0 and peer 2) goes on without it
            await node.create("topics", f"during-{n}", b"{}")
        peer1.start()
        state = await peer1.wait_applied(node.revision)
        expected = sorted([f"before-{n}" for n in range(50)] + [f"during-{n}" for n in range(50)])
        assert state["keys"] == expected
        # with peer 2 gone too, writes need the restarted node: it is a full voter again
        peer2.kill()
        rev = await node.create("topics", "after", b"{}")
        assert "after" in (await peer1.wait_applied(rev))["keys"]
    finally:
        await node.close()


async def test_full_restart_keeps_every_committed_write(
    group: tuple[list[str], list[PeerProcess]], tmp_path: Path
) -> None:
    addresses, peers = group
    node = local_node(addresses, tmp_path / "node0")
    await node.wait_ready()
    holder = await node.submit(node.leases.acquire, "sc", "replica-a", "", "")
    for n in range(200):
        await node.create("topics", f"t{n}", b"{}")
    t0 = await node.get("topics", "t0")
    assert t0 is not None
    rev = await node.update("topics", "t0", b'{"v": 2}', expected_revision=t0.revision)
    for peer in peers:
        peer.kill()
    await node.close()

    for peer in peers:
        peer.start()
    node = local_node(addresses, tmp_path / "node0")
    try:
        await node.wait_ready()
        await eventually(lambda: node.revision >= rev, timeout=20, what=f"node0 at {rev}")
        listing = await node.list("topics")
        assert sorted(e.key for e in listing.entries) == sorted(f"t{n}" for n in range(200))
        t0 = await node.get("topics", "t0")
        assert t0 is not None and t0.value == b'{"v": 2}' and t0.revision == rev
        # revisions and epochs go on from where they were
        assert await node.create("topics", "new", b"{}") > rev
        successor = await node.submit(node.leases.transfer, "sc", holder.epoch, "replica-b", "", "")
        assert successor is not None and successor.epoch > holder.epoch
    finally:
        await node.close()


# exactly-once writes (client sessions)

WRITERS = 12
UPDATES = 3
LEADER_CHANGES = 6


def versioned(key: str, version: int) -> bytes:
    return json.dumps({"spec": {"key": key, "version": version}}).encode()


async def force_leader_changes(node: RaftKv, peers: list[PeerProcess], count: int) -> int:
    """Depose the Raft leader ``count`` times while writes go on, each time another way:
    SIGKILL and restart, SIGSTOP past an election then SIGCONT, or a hand-over when the
    in-test node leads. Returns how many changes were made."""
    for change in range(count):
        await asyncio.sleep(0.4)
        await depose_leader(node, peers, kill=change % 2 == 0, frozen_for=0.3)
    return count


async def test_writes_apply_exactly_once_across_forced_leader_changes(
    group: tuple[list[str], list[PeerProcess]], tmp_path: Path
) -> None:
    """A stream of creates and guarded updates from one node while the Raft leader is
    deposed again and again: every write is answered with its own revision, none twice."""
    addresses, peers = group
    node = local_node(
        addresses, tmp_path / "node0", RaftSettings(commit_timeout=20.0, resend_after=0.05)
    )
    try:
        await node.wait_ready()
        holder = await node.submit(node.leases.acquire, "sc", "writer", "", "")
        guard = Guard("sc", holder.epoch)
        if node.is_raft_leader():  # the in-test node forwards its writes to a leader
            await node.hand_over_leadership()
        written: dict[str, list[int]] = {}
        failures: list[KvError] = []
        changing = asyncio.create_task(force_leader_changes(node, peers, LEADER_CHANGES))

        async def writer(index: int) -> None:
            for n in range(400):  # bounded; stops once the leader changes are over
                if changing.done() and n >= 5:
                    return
                key = f"w{index}-{n}"
                try:
                    revisions = [await node.create("topics", key, versioned(key, 0), guard=guard)]
                    for version in range(1, UPDATES + 1):
                        revisions.append(
                            await node.update(
                                "topics",
                                key,
                                versioned(key, version),
                                expected_revision=revisions[-1],
                                guard=guard,
                            )
                        )
                except KvError as failed:  # KeyExists, RevisionConflict, KvUnavailable
                    failures.append(failed)
                    continue
                written[key] = revisions

        async with asyncio.timeout(100):
            await asyncio.gather(*(writer(w) for w in range(WRITERS)), changing)
        assert changing.result() == LEADER_CHANGES
        assert failures == []
        assert node.resent > 0, "no write was caught by a leader change; nothing was tested"

        # each write applied once: one revision each, and the store used no other
        writes = sum(len(revisions) for revisions in written.values())
        assert node.revision == writes
        events = await _events(node, writes)
        by_key: dict[str, list[int]] = {}
        for event in events:
            by_key.setdefault(event.key, []).append(event.revision)
        assert by_key == written
        for key, revisions in written.items():
            entry = await node.get("topics", key)
            assert entry is not None
            assert (entry.value, entry.revision) == (versioned(key, UPDATES), revisions[-1])
            assert entry.create_revision == revisions[0]

        # and every replica holds the same objects and the same session table
        mine = list(node.fingerprint())
        for peer in peers:
            assert await peer.fingerprint_at(node.revision) == mine
    finally:
        await node.close()


async def _events(node: RaftKv, count: int) -> list[Any]:
    events = []
    async with asyncio.timeout(10):
        async for event in node.watch("topics", 1):
            events.append(event)
            if len(events) == count:
                return events
    return events


async def snapshotted(data_dirs: list[Path], timeout: float = 20.0) -> None:
    """Wait until every node has written a snapshot (and so dropped the log before it)."""
    await eventually(
        lambda: all((d / "raft.dump").exists() for d in data_dirs),
        timeout=timeout,
        what="a snapshot on every node",
    )


async def test_the_session_table_survives_snapshots_and_a_full_restart(
    group: tuple[list[str], list[PeerProcess]], tmp_path: Path
) -> None:
    """Copies of writes answered before a snapshot and a restart of every node get the
    same answers after it, and are not applied again."""
    addresses, peers = group
    for peer in peers:  # restarted with snapshots every 50 entries
        peer.kill()
        peer.options += ["--compaction-entries", "50"]
        peer.start()
    settings = RaftSettings(compaction_min_entries=50)
    node = local_node(addresses, tmp_path / "node0", settings)
    await node.wait_ready()
    created = ("topics", "orders", b'{"v": 1}', None, ("client-x", 1, 1, time.time()))
    refused = ("topics", "orders", b'{"v": 2}', None, ("client-x", 2, 1, time.time()))
    first_created = await node.submit(node.commands.create, *created)
    with pytest.raises(KeyExists):
        await node.submit(node.commands.create, *refused)
    for n in range(120):  # past the snapshot threshold on every node
        await node.create("topics", f"t{n}", b"{}")
    await snapshotted([tmp_path / "node0", *(p.data_dir for p in peers)])
    before = node.fingerprint()
    for peer in peers:
        peer.kill()
    await node.close()

    for peer in peers:
        peer.start()
    node = local_node(addresses, tmp_path / "node0", settings)
    try:
        await node.wait_ready()
        await eventually(lambda: node.revision >= before[0], timeout=20, what="node0 caught up")
        assert node.fingerprint() == before  # objects and sessions alike
        assert node.session_of("client-x") is not None
        # the copies: the first answers again, nothing applied
        assert await node.submit(node.commands.create, *created) == first_created
        with pytest.raises(KeyExists):
            await node.submit(node.commands.create, *refused)
        assert node.revision == before[0]
        entry = await node.get("topics", "orders")
        assert entry is not None and entry.value == b'{"v": 1}'
        # every replica agrees
        for peer in peers:
            assert await peer.fingerprint_at(before[0]) == list(node.fingerprint())
    finally:
        await node.close()


async def test_a_batch_is_one_command_applied_once_however_often_sent(
    group: tuple[list[str], list[PeerProcess]], tmp_path: Path
) -> None:
    """A copy of a batch (same client-session tag) gets the first copy's answers, the
    refused op's included, and changes nothing; every replica holds the same."""
    addresses, peers = group
    node = local_node(addresses, tmp_path / "node0")
    try:
        await node.wait_ready()
        await node.create("topics", "taken", b"{}")
        ops = op_rows(
            [
                CreateOp("topics", "a", b"{}"),
                CreateOp("topics", "taken", b'{"again": 1}'),
                CreateOp("topics", "b", b"{}"),
            ]
        )
        tag = ("client-batch", 1, 1, time.time())
        before = node.revision
        first = await node.submit(node.commands.batch, ops, None, tag)
        assert node.revision == before + 2  # one revision per changed key
        assert first[0] == before + 1 and first[2] == before + 2
        assert isinstance(first[1], KeyExists)
        again = await node.submit(node.commands.batch, ops, None, tag)
        assert (again[0], again[2]) == (first[0], first[2])
        assert isinstance(again[1], KeyExists)
        assert node.revision == before + 2
        for peer in peers:
            assert await peer.fingerprint_at(node.revision) == list(node.fingerprint())
    finally:
        await node.close()
