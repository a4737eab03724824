"""A topic deleted behind the SC's back leaves partitions that the leader collects; a
topic created again under its name starts empty, on every SPU.

On etcd the topic key is deleted with ``etcdctl del``, bypassing the cascade that an
API delete runs, as an operator would by hand.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from tests.cli_run import ha_sc
from tests.etcd_server import ETCDCTL_BINARY, EtcdServer
from tests.sc_processes import LocalCluster, computed, eventually

pytestmark = [pytest.mark.etcd, pytest.mark.slow]

TOPIC = "orders"
PARTITIONS = 2
OLD = [f"old-{n}".encode() for n in range(10)]


async def etcdctl_del(server: EtcdServer, key: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        str(ETCDCTL_BINARY),
        "--endpoints",
        server.endpoint,
        "del",
        key,
        env={**os.environ, "ETCDCTL_API": "3"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert (proc.returncode, out.strip()) == (0, b"1"), err.decode()


async def partition_keys(cluster: LocalCluster, via: str) -> set[str]:
    async with cluster.admin(via, timeout=2.0) as admin:
        return {p.key for p in await admin.list_partitions()}


async def consume_all(sc: str) -> list[bytes]:
    code, out, err = await ha_sc("consume", TOPIC, "-B", "-d", "--sc", sc)
    assert code == 0, err
    return out.splitlines()


async def provisioned(cluster: LocalCluster, leader: str) -> None:
    async with cluster.admin() as admin:
        await admin.create_topic(TOPIC, computed(PARTITIONS, 2), wait=20)
    await eventually(
        lambda: cluster.partitions_online(TOPIC, PARTITIONS, via=leader),
        what="partitions Online",
    )


@pytest.mark.parametrize("spu_down", [False, True], ids=["spus-up", "one-spu-down"])
async def test_etcdctl_del_of_a_topic_collects_its_partitions_and_a_new_one_starts_empty(
    spu_down: bool, tmp_path: Path, etcd_server: EtcdServer
) -> None:
    """``one-spu-down``: one SPU is stopped while the partitions are collected, so it never
    hears of their removal; back, it must not serve its old logs as the new topic's."""
    root = f"/{tmp_path.name}/"
    with LocalCluster(
        tmp_path,
        backend="etcd",
        replicas=1,
        spus=2,
        etcd_endpoint=etcd_server.endpoint,
        etcd_root=root,
    ) as cluster:
        leader, _ = await cluster.start_all()
        sc = cluster.public(leader)
        await provisioned(cluster, leader)
        for partition in range(PARTITIONS):
            code, _, err = await ha_sc(
                "produce", TOPIC, "-p", str(partition), "--sc", sc, stdin=b"\n".join(OLD) + b"\n"
            )
            assert code == 0, err
        assert len(await consume_all(sc)) == PARTITIONS * len(OLD)
        if spu_down:
            cluster.spus[5002].kill()

        await etcdctl_del(etcd_server, f"{root}topics/{TOPIC}")
        await eventually(
            lambda: _no_partitions(cluster, leader), what="the orphaned partitions collected"
        )
        log = cluster.replicas[leader].log()
        for partition in range(PARTITIONS):
            assert f"partition {TOPIC}-{partition} orphaned: owner topic {TOPIC} gone" in log

        if spu_down:
            cluster.start_spus(5002)
            await eventually(lambda: cluster.spus_online(via=leader), what="spu 5002 back")
        await provisioned(cluster, leader)
        assert await consume_all(sc) == [], "the new topic holds the old one's records"
        code, _, err = await ha_sc("produce", TOPIC, "-p", "0", "--sc", sc, stdin=b"new\n")
        assert code == 0, err
        assert await consume_all(sc) == [b"new"]
        cluster.assert_no_crash()


async def _no_partitions(cluster: LocalCluster, leader: str) -> bool:
    return not await partition_keys(cluster, leader)
