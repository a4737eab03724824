"""Three hosts (network namespaces), each running one etcd member, one SC replica on the
etcd backend and one SPU; the test process is a client on the hosts' network.

- one etcd member SIGKILLed, a follower of etcd's leader: nothing visible changes (the
  same SC leader at the same epoch, a topic create works, acks=all production goes on).
  Losing etcd's own leader is not held to that: etcd's re-election and the client's move
  to another member can outlast the SC's renew deadline on a loaded host (seen once), and
  the SC leader then changes (docs/operations.md, "Across hosts");
- a second one SIGKILLed (the etcd majority lost): the SC leader stops acting within
  its renew deadline, while the SPUs go on accepting acks=all records and serving them;
- both restarted: a leader again, and every acknowledged record is readable.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from ha_sc.client import Offset, ProducerSettings, StreamClient
from ha_sc.protocol.data import Acks
from ha_sc.sc.settings import ScSettings
from tests.multihost import EtcdCluster, HostedCluster, produce
from tests.netns import Network
from tests.sc_processes import computed, term_ended
from tests.waiting import eventually

pytestmark = [
    pytest.mark.netns,
    pytest.mark.etcd,
    pytest.mark.timeout(300),
    pytest.mark.usefixtures("netns_sweep"),
]

TOPIC = "events"
PARTITIONS = 3
RENEW_DEADLINE = ScSettings(backend="etcd").election_timing().renew_deadline
STOPPED_WITHIN = RENEW_DEADLINE + 3.0
"""The leader stops acting within its renew deadline after its last renewal; the
allowance covers the renew interval, the probe and a loaded shared machine."""
OUTAGE_ROUNDS = 6
OUTAGE_PAUSE = 0.5
"""Rounds produced, and the pause after each, while etcd has no majority."""


async def test_etcd_member_loss_is_invisible_majority_loss_stops_the_leader_not_the_spus(
    tmp_path: Path,
) -> None:
    with (
        Network(3) as net,
        EtcdCluster(tmp_path / "etcd", net.hosts) as etcd,
        HostedCluster(tmp_path, net.hosts, backend="etcd", etcd=etcd) as cluster,
    ):
        leader, epoch = await cluster.start_all()
        async with cluster.admin() as admin:
            await admin.create_topic(TOPIC, computed(PARTITIONS, 3), wait=20)
        await eventually(
            lambda: cluster.partitions_online(TOPIC, PARTITIONS, via=leader),
            what="partitions Online",
        )
        endpoints = [cluster.public(n) for n in cluster.replicas]
        async with StreamClient(endpoints, sc_timeout=1.0) as client:
            settings = ProducerSettings(acks=Acks.ALL)
            async with await client.topic_producer(TOPIC, settings) as producer:
                acked = await produce(producer, "before")

                # one etcd member lost, a follower: nothing visible changes
                second = etcd.leader()
                first = next(m for m in etcd.members if m is not second)
                first.kill()
                acked += await produce(producer, "one-member-down")
                async with cluster.admin() as admin:
                    await admin.create_topic("after-one-down", computed(1, 2), wait=20)
                await eventually(
                    lambda: cluster.partitions_online("after-one-down", 1, via=leader),
                    what="the new topic's partition Online with one etcd member down",
                )
                assert await cluster.agreed_leader() == (leader, epoch)

                # the etcd majority lost: the SC leader stops acting, the SPUs stream on
                second.kill()
                lost_at = time.monotonic()
                await eventually(
                    lambda: stopped_leading(cluster, leader),
                    timeout=STOPPED_WITHIN,
                    what=f"{leader} stops acting as leader without an etcd majority",
                )
                stopped_after = time.monotonic() - lost_at
                print(f"leader stopped acting {stopped_after:.2f} s after the etcd majority loss")
                await eventually(
                    lambda: term_ended(cluster.replicas[leader].log(), epoch),
                    what=f"{leader} logs that its term ended",
                )
                assert await no_replica_leads(cluster)
                for round_ in range(OUTAGE_ROUNDS):  # the outage lasts a few seconds
                    acked += await produce(producer, f"no-etcd-majority-{round_}")
                    await asyncio.sleep(OUTAGE_PAUSE)
                assert await no_replica_leads(cluster)
                stream = client.consumer(TOPIC).stream(Offset.beginning(), stop_at_end=True)
                async with stream:
                    during = [record.value async for record in stream]
                assert sorted(during) == sorted(acked)

                # healed: a leader again, production and the control plane work
                healed_at = time.monotonic()
                await asyncio.to_thread(etcd.restart, first, second)
                new_leader, new_epoch = await cluster.wait_for_leader(above=epoch)
                print(f"a leader again {time.monotonic() - healed_at:.2f} s after etcd restarted")
                async with cluster.admin() as admin:
                    await admin.create_topic("after-heal", computed(1, 3), wait=20)
                acked += await produce(producer, "healed")

            stream = client.consumer(TOPIC).stream(Offset.beginning(), stop_at_end=True)
            async with stream:
                read = [record.value async for record in stream]
        assert sorted(read) == sorted(acked)
        assert new_epoch > epoch and new_leader in cluster.replicas
        cluster.assert_no_crash()


async def stopped_leading(cluster: HostedCluster, replica: str) -> bool:
    """``replica`` answers, and not as the leader."""
    report = (await cluster.reports([replica])).get(replica)
    return report is not None and report["role"] != "leader"


async def no_replica_leads(cluster: HostedCluster) -> bool:
    """Every replica answers, and none says it is the leader."""
    reports = await cluster.reports()
    return len(reports) == len(cluster.replicas) and all(
        r["role"] != "leader" for r in reports.values()
    )
