"""Replication sessions over real sockets and real logs: data planes of three SPUs in
this process (tests/dataplane_harness.py), fed replica specs as the SC would send them.
A follower SPU replicates every partition it follows from one leader SPU in one fetch
session on one connection; partitions join, leave and move while it runs; a leader
restarted gets the full set again."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ha_sc.protocol.data import Acks
from ha_sc.spu.dataplane.follower_session import FollowerSession
from ha_sc.spu.dataplane.link import LeaderLink
from ha_sc.spu.dataplane_settings import DataPlaneSettings
from tests.data_client import RawDataClient, records_batch
from tests.dataplane_harness import Cluster
from tests.waiting import eventually

PARTITIONS = 40
IDLE_WAIT_MS = 60_000
"""Far longer than any wait here: a partition added to a parked session replicates
only because the session sends a fetch at once, not at the end of the wait."""


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    settings = DataPlaneSettings(
        replica_wait_ms=IDLE_WAIT_MS, replica_idle_wait_ms=IDLE_WAIT_MS, lag_time=1.0
    )
    planes = Cluster(tmp_path, [1, 2, 3], settings)
    await planes.start()
    try:
        yield planes
    finally:
        await planes.stop()


def session(cluster: Cluster, follower: int, leader: int) -> FollowerSession:
    plane = cluster.spus[follower].plane
    assert plane is not None
    return plane.registry._sessions[leader][0]


def answers(cluster: Cluster, follower: int, leader: int) -> int:
    """Answers the follower's session with the leader took so far (0: no session yet)."""
    plane = cluster.spus[follower].plane
    running = plane.registry._sessions.get(leader) if plane is not None else None
    return 0 if running is None else running[0].fetches


def link(cluster: Cluster, follower: int, leader: int) -> LeaderLink:
    plane = cluster.spus[follower].plane
    assert plane is not None
    return plane.registry._links[leader]


def listeners(cluster: Cluster, spu: int, key: str) -> int:
    """Fetch sessions listening to ``key``'s changes on ``spu``."""
    plane = cluster.spus[spu].plane
    assert plane is not None
    hosted = plane.registry.get(key)
    assert hosted is not None
    return len(hosted.replica.changes._listeners)


async def follower_holds(cluster: Cluster, spu: int, key: str, leo: int) -> bool:
    plane = cluster.spus[spu].plane
    hosted = plane.registry.get(key) if plane is not None else None
    return hosted is not None and hosted.replica.leo == leo and hosted.replica.hw == leo


async def produce(cluster: Cluster, leader: int, partition: int, *values: bytes) -> int:
    async with RawDataClient(cluster.spus[leader].public) as client:
        answer = await client.produce("t", partition, records_batch(list(values)), acks=Acks.ALL)
    assert answer.error is None and answer.base_offset is not None, answer
    return answer.base_offset + len(values)


async def test_every_partition_replicates_over_one_session_and_one_connection(
    cluster: Cluster,
) -> None:
    for n in range(PARTITIONS):
        cluster.assign(f"t-{n}", 1, [1, 2])
    await eventually(
        lambda: all(cluster.spus[2].registry_has(f"t-{n}", "follower") for n in range(PARTITIONS)),
        what="spu 2 follows every partition",
    )
    for n in range(0, PARTITIONS, 3):  # acks=all: answered once spu 2 fetched past it
        assert await produce(cluster, 1, n, b"a", f"{n}".encode()) == 2
    for n in range(PARTITIONS):
        await eventually(
            lambda n=n: follower_holds(cluster, 2, f"t-{n}", 2 if n % 3 == 0 else 0),
            what=f"spu 2 holds t-{n} up to the HW",
        )
    assert len(session(cluster, 2, 1)) == PARTITIONS
    assert link(cluster, 2, 1).connections == 1
    # one fetch per round for every partition, not one per partition: the session took
    # far fewer answers than the per-partition fetches this needed before (one each,
    # and one per produce)
    assert session(cluster, 2, 1).fetches < PARTITIONS


async def test_partitions_join_leave_and_move_while_the_session_waits(cluster: Cluster) -> None:
    cluster.assign("t-0", 1, [1, 2])
    cluster.assign("t-1", 1, [1, 2])
    await eventually(lambda: answers(cluster, 2, 1) >= 1, what="the session answered")
    # joins a session whose fetch is parked at the leader for a minute
    cluster.assign("t-2", 1, [1, 2])
    await eventually(lambda: cluster.spus[2].registry_has("t-2", "follower"), what="t-2 follows")
    assert await produce(cluster, 1, 2, b"x", b"y") == 2
    await eventually(lambda: follower_holds(cluster, 2, "t-2", 2), what="t-2 replicated")
    # leaves: spu 2 is no longer a replica of t-1; spu 1 leads it alone and forgets it
    assert listeners(cluster, 1, "t-1") == 1
    cluster.assign("t-1", 1, [1])
    await eventually(lambda: len(session(cluster, 2, 1)) == 2, what="t-1 left the session")
    assert await produce(cluster, 1, 2, b"z") == 3  # the next fetch tells the leader
    await eventually(lambda: listeners(cluster, 1, "t-1") == 0, what="spu 1 forgot t-1")
    # moves: t-0 led by spu 3 from now on; spu 2 leaves spu 1's session for spu 3's
    cluster.assign("t-0", 3, [3, 2])
    await eventually(lambda: cluster.spus[3].registry_has("t-0", "leader"), what="3 leads t-0")
    assert await produce(cluster, 3, 0, b"moved") == 1
    await eventually(lambda: follower_holds(cluster, 2, "t-0", 1), what="t-0 from spu 3")
    await eventually(lambda: len(session(cluster, 2, 1)) == 1, what="t-0 left spu 1's session")
    assert len(session(cluster, 2, 3)) == 1
    assert await produce(cluster, 1, 2, b"w") == 4  # the rest of spu 1's session goes on
    await eventually(lambda: follower_holds(cluster, 2, "t-2", 4), what="t-2 goes on")


async def test_a_restarted_leader_gets_the_full_set_again(cluster: Cluster) -> None:
    for n in range(3):
        cluster.assign(f"t-{n}", 1, [1, 2])
    for n in range(3):
        assert await produce(cluster, 1, n, b"before") == 1
        await eventually(lambda n=n: follower_holds(cluster, 2, f"t-{n}", 1), what=f"t-{n}")
    await cluster.stop(1)
    await cluster.start(1)
    await eventually(
        lambda: all(cluster.spus[1].registry_has(f"t-{n}", "leader") for n in range(3)),
        what="spu 1 leads again",
    )
    for n in range(3):
        assert await produce(cluster, 1, n, b"after", b"restart") == 3
        await eventually(lambda n=n: follower_holds(cluster, 2, f"t-{n}", 3), what=f"t-{n} again")
    assert link(cluster, 2, 1).connections == 2
    assert all(listeners(cluster, 1, f"t-{n}") == 1 for n in range(3))
