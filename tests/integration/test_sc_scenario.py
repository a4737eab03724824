"""The whole failover story on real processes, on each backend: 3 SC replicas, 3 SPUs,
a topic; the SC leader is SIGKILLed, then an SPU that leads a partition, then the next
SC leader is SIGSTOPped past its lease and resumed. Throughout, a standby answers reads
from its cache; at the end the fencing invariants hold."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sys
import time
from collections.abc import Awaitable
from pathlib import Path

import pytest

from ha_sc.model import PartitionResolution, TopicResolution
from tests.sc_processes import (
    POLL,
    LocalCluster,
    applied_epochs,
    computed,
    eventually,
    leader_epochs,
    term_ended,
)

pytestmark = pytest.mark.slow

SPU_IDS = (5001, 5002, 5003)
HEALTH_TIMEOUT = 1.2
"""The SC's SPU health timeout (ha_sc.sc.spu_server)."""
PARTITION_FAILOVER_BOUND = HEALTH_TIMEOUT + 6.0
"""SIGKILL of an SPU -> its partition led by the follower: at most the health timeout
(the kernel's FIN usually tells sooner), a controller pass and a KV write, with a wide
margin for a noisy machine."""
RESUMED_FOR = 2.0
"""How long the resumed replica is watched before the invariants are checked."""
STOPPED_FOR = 4.0
"""How long the SC leader stays SIGSTOPped: past its lease on both backends (Raft 0.8 s,
etcd 2 s), and past the SPUs' 3 s SC timeout, so they leave it for the new leader."""


async def topic_names(cluster: LocalCluster, replica: str) -> list[str]:
    """``topic list`` through ``replica`` alone: what its cache holds."""
    async with cluster.admin(replica, timeout=3.0) as client:
        return sorted(t.key for t in await client.list_topics())


async def cli_topic_names(replica_public: str) -> list[str]:
    """``ha-sc topic list --sc <replica> -O json``."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ha_sc.cli",
        "--log-level",
        "warning",
        "topic",
        "list",
        "--sc",
        replica_public,
        "-O",
        "json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    return sorted(t["name"] for t in json.loads(out))


def role_of(cluster: LocalCluster, spu_id: int, partition: str) -> str | None:
    """The role the SPU's state file gives it for ``partition``."""
    replicas = cluster.spu_state(spu_id).get("replicas", [])
    return next((r["role"] for r in replicas if r["partition"] == partition), None)


@pytest.mark.parametrize(
    "backend",
    [pytest.param("raft", marks=pytest.mark.raft), pytest.param("etcd", marks=pytest.mark.etcd)],
)
async def test_failover_scenario_keeps_the_fencing_invariants(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    etcd = request.getfixturevalue("etcd_server").endpoint if backend == "etcd" else None
    with LocalCluster(
        tmp_path,
        backend=backend,
        spus=len(SPU_IDS),
        etcd_endpoint=etcd,
        etcd_root=f"/{tmp_path.name}/",
    ) as cluster:
        # -- a cluster with a topic, every partition Online
        first, epoch1 = await cluster.start_all()
        async with cluster.admin() as client:
            topic = await client.create_topic("orders", computed(3, 2), wait=20)
        assert topic.status.resolution is TopicResolution.PROVISIONED
        await eventually(
            lambda: cluster.partitions_online("orders", 3, via=first), what="orders Online"
        )
        assert await eventually(lambda: cluster.spus_follow(first, epoch1), what="SPUs follow")

        # -- SIGKILL the SC leader: a standby leads with a larger epoch, the SPUs follow it
        standbys = [n for n in cluster.replicas if n != first]
        cluster.replicas[first].kill()
        # no leader may exist right now: a standby still answers from its cache
        assert await topic_names(cluster, standbys[0]) == ["orders"]
        second, epoch2 = await cluster.wait_for_leader(standbys, above=epoch1)
        assert second != first and epoch2 > epoch1
        await eventually(lambda: cluster.spus_follow(second, epoch2), what="SPUs follow 2nd")
        async with cluster.admin(*standbys) as client:
            orders = await client.describe_topic("orders")
            assert orders.status.resolution is TopicResolution.PROVISIONED
            assert len(await client.list_partitions("orders")) == 3
            await eventually(
                lambda: cluster.partitions_online("orders", 3, via=second), what="orders intact"
            )
            created = await client.create_topic("payments", computed(1, 2), wait=20)
            assert created.status.resolution is TopicResolution.PROVISIONED
        standby = next(n for n in standbys if n != second)
        assert await cli_topic_names(cluster.public(standby)) == ["orders", "payments"]

        # -- SIGKILL the SPU that leads orders-0: the follower leads it
        async with cluster.admin(second) as client:
            (partition,) = [
                p for p in await client.list_partitions("orders") if p.key.endswith("-0")
            ]
        victim = partition.spec.leader
        (follower,) = [spu for spu in partition.spec.replicas if spu != victim]
        cluster.spus[victim].kill()
        killed = time.monotonic()

        async def led_by_follower() -> bool:
            async with cluster.admin(second, timeout=2.0) as client:
                now = [p for p in await client.list_partitions("orders") if p.key == partition.key]
            return bool(
                now
                and now[0].spec.leader == follower
                and now[0].status.resolution is PartitionResolution.ONLINE
            )

        await eventually(
            led_by_follower, timeout=PARTITION_FAILOVER_BOUND, what=f"{partition.key} failover"
        )
        failover = time.monotonic() - killed
        await eventually(
            lambda: role_of(cluster, follower, partition.key) == "leader",
            what=f"spu {follower} leads {partition.key}",
        )
        assert await topic_names(cluster, standby) == ["orders", "payments"]

        # -- both come back with their data dirs: the SPU follows, the replica is a standby
        cluster.spus[victim].start()
        cluster.replicas[first].start()
        await eventually(lambda: cluster.caught_up(first, second), what=f"{first} rejoins")
        await eventually(lambda: cluster.spus_online(via=second), what="SPUs all online")
        await eventually(lambda: cluster.spus_follow(second, epoch2), what="SPUs follow 2nd")
        await eventually(
            lambda: cluster.partitions_online("orders", 3, via=second), what="orders settled"
        )

        # -- SIGSTOP the leader past its lease: another replica takes over
        others = [n for n in cluster.replicas if n != second]
        paused = cluster.replicas[second]
        paused.signal(signal.SIGSTOP)
        stopped = time.monotonic()
        try:
            third, epoch3 = await cluster.wait_for_leader(others, above=epoch2)
            assert third != second and epoch3 > epoch2
            takeover = time.monotonic() - stopped  # about the TTL since its last renewal
            # reads keep coming from a standby's cache meanwhile
            assert await topic_names(cluster, next(n for n in others if n != third)) == [
                "orders",
                "payments",
            ]
            await asyncio.sleep(max(0.0, STOPPED_FOR - (time.monotonic() - stopped)))
            woke_at = paused.log_size()  # it is stopped: nothing after this was written yet
        finally:
            paused.signal(signal.SIGCONT)
        # on waking it re-checks its lease before anything else: never a leader again
        roles: set[str] = set()
        resumed = time.monotonic()
        while time.monotonic() - resumed < RESUMED_FOR or not roles:
            assert time.monotonic() - resumed < 10 * RESUMED_FOR, "the resumed one is silent"
            roles |= {r["role"] for r in (await cluster.reports([second])).values()}
            await asyncio.sleep(POLL)
        assert roles == {"standby"}, roles

        # -- the fencing invariants
        await eventually(  # every replica, the resumed one too, names the new leader
            lambda: _equals(cluster.agreed_leader(), (third, epoch3)), timeout=10, what="agree"
        )
        await eventually(lambda: cluster.spus_follow(third, epoch3), what="SPUs follow 3rd")
        refused = {}
        for spu_id in SPU_IDS:
            state = cluster.spu_state(spu_id)
            assert state["highest_epoch"] == epoch3, state
            refused[spu_id] = state["refused"]
            epochs = applied_epochs(cluster.spus[spu_id].log())
            assert epochs == sorted(epochs), f"spu {spu_id} applied epochs out of order: {epochs}"
            assert epochs[-1] == epoch3, epochs
            stale = re.findall(r"refused a \w+ from stale epoch (\d+)", cluster.spus[spu_id].log())
            assert all(int(e) < epoch3 for e in stale), stale
        print(
            f"[{backend}] epochs {epoch1}->{epoch2}->{epoch3}; spu refused counts {refused}; "
            f"partition failover {failover:.2f} s; SIGSTOP -> takeover {takeover:.2f} s"
        )

        after = paused.log(since=woke_at)
        assert term_ended(after, epoch2), after
        assert "became leader" not in after, after
        # a controller logs a write only once the KV applied it: none under the old epoch
        assert not re.search(rf"ha_sc\.controllers: .*\(epoch {epoch2}\)$", after, re.M), after
        assert leader_epochs(paused.log()) == [epoch2]

        async with cluster.admin(second) as client:  # the resumed replica's cache is current
            assert sorted(t.key for t in await client.list_topics()) == ["orders", "payments"]
        cluster.assert_no_crash()


async def _equals(pending: Awaitable[object], expected: object) -> bool:
    return await pending == expected
