"""SC replicas as processes on a 3-member etcd cluster with TLS on client and peer
traffic and client certificates required: a leader is elected and serves, and losing
the etcd member the replicas talk to changes nothing visible."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from ha_sc.client import AdminClient
from tests.etcd_server import EtcdCluster, EtcdTls
from tests.sc_processes import LocalCluster, computed, leader_epochs
from tests.waiting import eventually

pytestmark = [pytest.mark.etcd, pytest.mark.slow]


@pytest.fixture
def tls_cluster(tmp_path: Path) -> Iterator[EtcdCluster]:
    cluster = EtcdCluster(tmp_path / "etcd", size=3, tls=EtcdTls.made_in(tmp_path / "pki"))
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


def tls_flags(cluster: EtcdCluster) -> list[str]:
    """``sc run`` flags for the TLS cluster: every member's https URL, the CA and a
    client certificate (the replicas' first endpoint is the first member)."""
    assert cluster.tls is not None
    flags = [
        "--etcd-ca", str(cluster.tls.ca),
        "--etcd-cert", str(cluster.tls.client.cert),
        "--etcd-key", str(cluster.tls.client.key),
    ]  # fmt: skip
    for url in cluster.urls[1:]:
        flags += ["--etcd-endpoint", url]
    return flags


async def create_topic(admin: AdminClient, name: str) -> None:
    await admin.create_topic(name, computed(1, 1))


async def test_replicas_on_a_tls_etcd_cluster_survive_losing_the_member_they_use(
    tmp_path: Path, tls_cluster: EtcdCluster
) -> None:
    with LocalCluster(
        tmp_path / "sc",
        backend="etcd",
        replicas=2,
        spus=1,
        etcd_endpoint=tls_cluster.urls[0],
        sc_extra=tls_flags(tls_cluster),
    ) as cluster:
        leader, epoch = await cluster.start_all()
        async with cluster.admin() as admin:
            await create_topic(admin, "before")
        await eventually(
            lambda: cluster.partitions_online("before", 1, via=leader), what="before online"
        )

        tls_cluster.members[0].kill()  # SIGKILL by PID: the member every replica dials first

        async with cluster.admin(timeout=15.0) as admin:
            await create_topic(admin, "after")
        await eventually(
            lambda: cluster.partitions_online("after", 1, via=leader), what="after online"
        )
        await asyncio.sleep(2 * 1.5)  # two renew deadlines: a lost lease would show by now
        assert await cluster.agreed_leader() == (leader, epoch)
        assert leader_epochs(cluster.replicas[leader].log()) == [epoch]
        cluster.assert_no_crash()
