"""SC replicas as processes on a 3-member etcd cluster with TLS on client and peer
traffic and client certificates required: a leader is elected and serves, and losing
the etcd member the replicas talk to (a follower) changes nothing visible. And a replica that logs
in to etcd as a user with a password file."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from ha_sc.client import AdminClient
from tests.etcd_server import EtcdCluster, EtcdServer, EtcdTls
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

        # SIGKILL by PID the member every replica dials first, a follower: losing the
        # etcd leader also costs an etcd election, which on a loaded machine can outlast
        # the SC's renew deadline (docs/operations.md)
        await asyncio.to_thread(tls_cluster.hand_leadership_to, 1)
        tls_cluster.members[0].kill()

        async with cluster.admin(timeout=15.0) as admin:
            await create_topic(admin, "after")
        await eventually(
            lambda: cluster.partitions_online("after", 1, via=leader), what="after online"
        )
        await asyncio.sleep(2 * 1.5)  # two renew deadlines: a lost lease would show by now
        assert await cluster.agreed_leader() == (leader, epoch)
        assert leader_epochs(cluster.replicas[leader].log()) == [epoch]
        cluster.assert_no_crash()


ETCD_PASSWORD = "sc-password-for-etcd-tests"


@pytest.fixture
def auth_etcd(tmp_path: Path) -> Iterator[EtcdServer]:
    """A TLS etcd with auth on, without client certificates: users ``root`` and ``sc``
    (read-write under /ha-sc/ only), both with ``ETCD_PASSWORD``."""
    tls = EtcdTls.made_in(tmp_path / "pki", client_cert_auth=False)
    server = EtcdServer(tmp_path / "etcd", tls=tls)
    server.start()
    try:
        for user in ("root", "sc"):
            server.etcdctl("user", "add", user, f"--new-user-password={ETCD_PASSWORD}")
        server.etcdctl("role", "add", "ha-sc")
        server.etcdctl("role", "grant-permission", "ha-sc", "--prefix=true", "readwrite", "/ha-sc/")
        server.etcdctl("user", "grant-role", "sc", "ha-sc")
        server.etcdctl("auth", "enable")
        yield server
    finally:
        server.destroy()


async def test_a_replica_logs_in_to_etcd_as_a_user_with_a_password_file(
    tmp_path: Path, auth_etcd: EtcdServer
) -> None:
    assert auth_etcd.tls is not None
    password = tmp_path / "etcd-password"
    password.write_text(ETCD_PASSWORD + "\n")
    password.chmod(0o600)
    flags = [
        "--etcd-ca", str(auth_etcd.tls.ca),
        "--etcd-user", "sc",
        "--etcd-password-file", str(password),
    ]  # fmt: skip
    with LocalCluster(
        tmp_path / "sc",
        backend="etcd",
        replicas=1,
        spus=1,
        etcd_endpoint=auth_etcd.url,
        sc_extra=flags,
    ) as cluster:
        leader, _ = await cluster.start_all()
        async with cluster.admin() as admin:
            await create_topic(admin, "orders")
            assert [t.key for t in await admin.list_topics()] == ["orders"]
        log = cluster.replicas[leader].log()
        assert "TLS, etcd user sc" in log and ETCD_PASSWORD not in log
        cluster.assert_no_crash()
