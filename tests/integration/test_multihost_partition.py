"""Three hosts (network namespaces), each running one SC replica and one SPU, on each
backend: the embedded Raft (its traffic authenticated with a shared secret file, mode
0600) or a 3-member etcd cluster, one member per host. The test process is a client on
the hosts' network.

The SC leader's host has its link taken down (a partition: that host, with its replica,
its SPU and on etcd its etcd member, alone on one side). The cut replica stops acting,
the two others elect a leader, the SPU on the cut host is reported Offline and the
partitions it led are led by reachable SPUs; acks=all production goes on. Healed, the
cluster settles with one leader that all three replicas name, and every acknowledged
record is readable.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import stat
import time
from collections.abc import Iterable
from pathlib import Path

import pytest

from ha_sc.client import Offset, ProducerSettings, StreamClient
from ha_sc.cluster.credentials import raft_secret_file
from ha_sc.model import PartitionResolution, SpuResolution
from ha_sc.protocol.data import Acks
from tests.multihost import EtcdCluster, HostedCluster, produce
from tests.netns import Host, Network
from tests.sc_processes import computed, term_ended
from tests.waiting import eventually

pytestmark = [
    pytest.mark.netns,
    pytest.mark.timeout(300),
    pytest.mark.usefixtures("netns_sweep"),
]

BACKENDS = [
    pytest.param("raft", marks=pytest.mark.raft),
    pytest.param("etcd", marks=pytest.mark.etcd),
]

TOPIC = "events"
PARTITIONS = 6
"""Enough partitions that the cut host's SPU leads some and follows others."""


async def role_seen_from(host: Host, public: str) -> str | None:
    """The role the replica at ``public`` reports to a client on ``host``, if it answers."""
    body = await asyncio.to_thread(host.fetch, f"http://{public}/leader")
    return None if body is None else str(json.loads(body)["role"])


async def spus_offline(cluster: HostedCluster, ids: Iterable[int], *, via: str) -> bool:
    async with cluster.admin(via, timeout=2.0) as client:
        spus = await client.list_spus()
    offline = {s.spec.id for s in spus if s.status.resolution is SpuResolution.OFFLINE}
    return set(ids) <= offline


async def led_without(cluster: HostedCluster, topic: str, lost: Iterable[int], *, via: str) -> bool:
    """Every partition of ``topic`` is Online with a leader (spec and status) not in ``lost``."""
    gone = set(lost)
    async with cluster.admin(via, timeout=2.0) as client:
        partitions = await client.list_partitions(topic)
    return len(partitions) == PARTITIONS and all(
        p.status.resolution is PartitionResolution.ONLINE
        and p.spec.leader not in gone
        and p.status.leader.spu not in gone
        for p in partitions
    )


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_cut_host_loses_its_sc_leadership_and_its_spus_partitions_fail_over(
    backend: str, tmp_path: Path
) -> None:
    with contextlib.ExitStack() as stack:
        net = stack.enter_context(Network(3))
        etcd = None
        if backend == "etcd":
            etcd = stack.enter_context(EtcdCluster(tmp_path / "etcd", net.hosts))
        cluster = stack.enter_context(
            HostedCluster(tmp_path, net.hosts, backend=backend, etcd=etcd)
        )
        if backend == "raft":
            secret = raft_secret_file(tmp_path)
            assert stat.S_IMODE(secret.stat().st_mode) == 0o600
            for member in cluster.replicas.values():
                assert "--raft-secret-file" in member.command
                assert "--allow-unauthenticated-raft" not in member.command

        leader, epoch = await cluster.start_all()
        async with cluster.admin() as admin:
            await admin.create_topic(TOPIC, computed(PARTITIONS, 2), wait=20)
        await eventually(
            lambda: cluster.partitions_online(TOPIC, PARTITIONS, via=leader),
            what="partitions Online",
        )
        cut = cluster.where[leader]
        cut_replicas, cut_spus = cluster.on(cut)
        others = [r for r in cluster.replicas if r not in cut_replicas]
        async with cluster.admin(leader) as admin:
            led_by_cut = [
                p.key for p in await admin.list_partitions(TOPIC) if p.spec.leader in cut_spus
            ]
        assert led_by_cut, "the cut host's SPU should lead some partition"

        endpoints = [cluster.public(n) for n in cluster.replicas]
        async with StreamClient(endpoints, sc_timeout=1.0) as client:
            settings = ProducerSettings(acks=Acks.ALL)
            async with await client.topic_producer(TOPIC, settings) as producer:
                acked = await produce(producer, "before")

                cut.link_down()
                cut_at = time.monotonic()
                new_leader, new_epoch = await cluster.wait_for_leader(others, above=epoch)
                elected = time.monotonic() - cut_at
                print(f"majority elected {new_leader} {elected:.2f} s after the cut")
                await eventually(
                    lambda: term_ended(cluster.replicas[leader].log(), epoch),
                    what=f"the cut replica {leader} logs that its term ended",
                )
                await eventually(
                    lambda: role_seen_from(cut, cluster.public(leader)),
                    until=lambda role: role == "standby",
                    what=f"the cut replica {leader} answers standby on its own host",
                )
                await eventually(
                    lambda: spus_offline(cluster, cut_spus, via=new_leader),
                    what=f"SPUs {cut_spus} on the cut host reported Offline",
                )
                await eventually(
                    lambda: led_without(cluster, TOPIC, cut_spus, via=new_leader),
                    what="every partition led by a reachable SPU",
                )
                print(f"partitions failed over {time.monotonic() - cut_at:.2f} s after the cut")
                acked += await produce(producer, "cut")

                cut.link_up()
                healed_at = time.monotonic()
                settled, _ = await cluster.wait_for_leader(above=new_epoch - 1)
                settled_after = time.monotonic() - healed_at
                print(f"one leader named by all {settled_after:.2f} s after healing")
                await eventually(
                    lambda: cluster.spus_online(via=settled), what="every SPU Online after healing"
                )
                acked += await produce(producer, "healed")

            stream = client.consumer(TOPIC).stream(Offset.beginning(), stop_at_end=True)
            async with stream:
                read = [record.value async for record in stream]
        assert sorted(read) == sorted(acked)
        cluster.assert_no_crash()
