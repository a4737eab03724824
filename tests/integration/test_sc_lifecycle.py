"""Members start in any order and come back after a restart, on real processes:
SPUs before any SC replica, SC replicas before their etcd, Raft replicas one by one,
and a replica restarted with its data dir rejoining as a standby."""

from __future__ import annotations

import asyncio
import re
import signal
import time
from pathlib import Path

import pytest

from ha_sc.client import ApiError
from ha_sc.model import CustomSpuSpec, Endpoint, TopicResolution
from tests.etcd_server import EtcdServer
from tests.sc_processes import LocalCluster, computed, eventually, leader_epochs, term_ended

pytestmark = pytest.mark.slow

BACKENDS = [
    pytest.param("raft", marks=pytest.mark.raft),
    pytest.param("etcd", marks=pytest.mark.etcd),
]
ALONE_FOR = 3.0
"""Seconds a member is left alone before the ones it needs start."""
MAX_BACKOFF = 0.2
"""The SPU's longest wait between connection attempts (ha_sc.spu.settings)."""
LONE_WAIT = 20.0
"""Longest wait for a lone Raft replica's first "no leader" warning (logged after 10 s alone)."""
SIGTERM_BOUND = 5.0
"""SIGTERM -> the replica has exited."""
HANDOVER_BOUND = 5.0
"""SIGTERM of the leader -> a standby leads: a handover, not a lease expiry."""


def cluster_for(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, **kwargs: int
) -> LocalCluster:
    """A cluster on ``backend``; on etcd, under its own root of the session's etcd."""
    etcd = request.getfixturevalue("etcd_server").endpoint if backend == "etcd" else None
    return LocalCluster(
        tmp_path, backend=backend, etcd_endpoint=etcd, etcd_root=f"/{tmp_path.name}/", **kwargs
    )


async def topic_keys(cluster: LocalCluster, replica: str) -> set[str]:
    async with cluster.admin(replica, timeout=3.0) as client:
        return {t.key for t in await client.list_topics()}


async def synced_topic_keys(cluster: LocalCluster, replica: str) -> tuple[set[str]] | None:
    """The replica's topic keys once its cache has synced (a 503 until then)."""
    try:
        return (await topic_keys(cluster, replica),)
    except ApiError as failed:
        if failed.status == 503:
            return None
        raise


@pytest.mark.parametrize("backend", BACKENDS)
async def test_spus_started_before_any_sc_replica_come_online(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    with cluster_for(backend, tmp_path, request, spus=3) as cluster:
        cluster.start_spus()
        started = time.monotonic()
        await eventually(
            lambda: all(
                f"next attempt in {MAX_BACKOFF:.2f} s" in s.log() for s in cluster.spus.values()
            ),
            what="the SPUs back off to their longest wait",
        )
        await asyncio.sleep(max(0.0, ALONE_FOR - (time.monotonic() - started)))
        alone_for = time.monotonic() - started
        pids = {spu_id: spu.pid for spu_id, spu in cluster.spus.items()}
        for spu_id, spu in cluster.spus.items():
            assert spu.alive, spu.log()
            state = cluster.spu_state(spu_id)
            assert state["sc"] is None and state["highest_epoch"] == 0, state
            log = spu.log()
            attempts = len(re.findall(r"cannot connect", log))
            assert attempts >= 3, log
            # backoff: after the first few attempts, at most one per MAX_BACKOFF
            assert attempts <= alone_for / MAX_BACKOFF + 6, (attempts, log)
            # quietly: nothing but the start's one warning that the ports run without TLS
            waiting = [
                line for line in log.splitlines() if "unencrypted (no --tls-cert)" not in line
            ]
            assert not re.search(r"WARNING|ERROR|CRITICAL|Traceback", "\n".join(waiting)), log

        cluster.start_replicas()
        leader, epoch = await cluster.wait_for_leader()
        await cluster.register_spus()  # what `cluster up` does; the SPUs are left alone
        await eventually(lambda: cluster.spus_online(via=leader), what="SPUs online")
        assert await eventually(lambda: cluster.spus_follow(leader, epoch), what="SPUs follow")
        assert {spu_id: spu.pid for spu_id, spu in cluster.spus.items()} == pids
        assert all(spu.starts == 1 and spu.alive for spu in cluster.spus.values())
        cluster.assert_no_crash()


@pytest.mark.etcd
async def test_sc_replicas_started_before_their_etcd_wait_for_it(tmp_path: Path) -> None:
    etcd = EtcdServer(tmp_path / "etcd")  # its ports are chosen; nothing listens there yet
    planned = etcd.endpoint
    try:
        with LocalCluster(
            tmp_path, backend="etcd", spus=0, etcd_endpoint=planned, etcd_root="/late-etcd/"
        ) as cluster:
            cluster.start_replicas()
            started = time.monotonic()
            await eventually(lambda: all_answer(cluster), what="every replica's public API answers")
            await asyncio.sleep(max(0.0, ALONE_FOR - (time.monotonic() - started)))
            reports = await cluster.reports()
            assert set(reports) == set(cluster.replicas), reports
            for name, report in reports.items():
                replica = cluster.replicas[name]
                assert replica.alive, replica.log()
                assert report["role"] == "standby" and report["leader"] is None, report
                await eventually(
                    lambda replica=replica: "etcd unreachable" in replica.log(),
                    what=f"{name} logs that etcd is unreachable",
                )

            etcd.start()
            assert etcd.endpoint == planned, "etcd had to move to other ports"
            leader, _epoch = await cluster.wait_for_leader()
            for name in cluster.replicas:  # a standby may still be waiting out a retry
                (keys,) = await eventually(
                    lambda name=name: synced_topic_keys(cluster, name),
                    what=f"{name} answers from a synced cache",
                )
                assert keys == set()
            async with cluster.admin() as client:  # a write, through whichever replica
                await client.register_spu(
                    CustomSpuSpec(
                        id=5001,
                        public_endpoint=Endpoint(host="127.0.0.1", port=9005),
                        private_endpoint=Endpoint(host="127.0.0.1", port=9006),
                    )
                )
            standby = next(n for n in cluster.replicas if n != leader)

            async def standby_sees_the_spu() -> bool:
                async with cluster.admin(standby) as client:
                    return [s.spec.id for s in await client.list_spus()] == [5001]

            await eventually(standby_sees_the_spu, what="the write reaches a standby's cache")
            cluster.assert_no_crash()
    finally:
        etcd.destroy()


@pytest.mark.raft
async def test_raft_replicas_started_one_by_one_elect_once_a_majority_runs(
    tmp_path: Path,
) -> None:
    with LocalCluster(tmp_path, backend="raft", spus=0) as cluster:
        first = cluster.replicas["sc-1"]
        first.start()
        await asyncio.sleep(ALONE_FOR)
        assert first.alive, first.log()
        assert "became leader" not in first.log()

        cluster.start_replicas("sc-2")  # a majority of three
        leader, epoch = await cluster.wait_for_leader(["sc-1", "sc-2"])
        await asyncio.sleep(1.0)
        cluster.start_replicas("sc-3")
        await eventually(lambda: cluster.caught_up("sc-3", leader), what="sc-3 joins")
        assert await cluster.agreed_leader() == (leader, epoch)
        assert leader_epochs(cluster.replicas["sc-3"].log()) == []
        cluster.assert_no_crash()


@pytest.mark.raft
async def test_a_lone_raft_replica_answers_that_there_is_no_leader_and_stops_on_sigterm(
    tmp_path: Path,
) -> None:
    """Start in any order: the first replica, alone (no Raft majority), serves its public
    API saying no leader exists, keeps running, and stops at once on SIGTERM."""
    with LocalCluster(tmp_path, backend="raft", replicas=3, spus=0) as cluster:
        lone = cluster.replicas["sc-1"]
        lone.start()
        started = time.monotonic()
        answer: dict[str, object] | None = None
        while answer is None and time.monotonic() - started < ALONE_FOR + 2.0:
            answer = (await cluster.reports(["sc-1"])).get("sc-1")
            await asyncio.sleep(0.1)
        # past one "no leader" warning: it keeps waiting rather than giving up
        while (
            lone.alive
            and "waiting for a majority" not in lone.log()
            and time.monotonic() - started < LONE_WAIT
        ):
            await asyncio.sleep(0.2)
        await asyncio.sleep(0.5)
        ran_alone = lone.alive

        lone.signal(signal.SIGTERM)
        stopping = time.monotonic()
        while lone.alive and time.monotonic() - stopping < SIGTERM_BOUND:
            await asyncio.sleep(0.05)
        exit_code = lone.proc.poll() if lone.proc is not None else None

        problems = []
        if answer is None:
            problems.append(f"GET /leader not answered within {ALONE_FOR + 2.0:g} s")
        elif answer.get("role") != "standby" or answer.get("leader") is not None:
            problems.append(f"GET /leader answered {answer}")
        if not ran_alone:
            problems.append("it exited while alone")
        elif "waiting for a majority" not in lone.log():
            problems.append(f"no warning that it waits for a majority in {LONE_WAIT:g} s")
        if exit_code != 0:
            problems.append(f"{SIGTERM_BOUND:g} s after SIGTERM: exit code {exit_code}")
        assert not problems, f"{problems}; log:\n{lone.log()}"


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_restarted_replica_rejoins_as_a_standby(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    with cluster_for(backend, tmp_path, request, spus=2) as cluster:
        leader, epoch = await cluster.start_all()
        async with cluster.admin() as client:
            await client.create_topic("before", computed(1, 2), wait=20)

        # a standby, SIGKILLed, misses a topic; back with its data dir it catches up
        standby = next(n for n in cluster.replicas if n != leader)
        cluster.replicas[standby].kill()
        async with cluster.admin(leader) as client:
            made = await client.create_topic("while-standby-down", computed(1, 2), wait=20)
            assert made.status.resolution is TopicResolution.PROVISIONED
        cluster.replicas[standby].start()
        await eventually(lambda: cluster.caught_up(standby, leader), what=f"{standby} rejoins")
        assert await topic_keys(cluster, standby) == {"before", "while-standby-down"}
        assert await cluster.agreed_leader() == (leader, epoch)  # the leader is unchanged
        assert leader_epochs(cluster.replicas[standby].log()) == []

        # the leader, SIGTERMed, hands over at once; back with its data dir, it is a standby
        others = [n for n in cluster.replicas if n != leader]
        assert cluster.replicas[leader].terminate() == 0
        stopped = time.monotonic()
        successor, epoch2 = await cluster.wait_for_leader(others, above=epoch)
        handover = time.monotonic() - stopped
        assert handover < HANDOVER_BOUND, handover
        async with cluster.admin(*others) as client:
            made = await client.create_topic("while-leader-down", computed(1, 2), wait=20)
            assert made.status.resolution is TopicResolution.PROVISIONED
        cluster.replicas[leader].start()
        await eventually(lambda: cluster.caught_up(leader, successor), what=f"{leader} rejoins")
        assert await topic_keys(cluster, leader) == {
            "before",
            "while-standby-down",
            "while-leader-down",
        }
        assert await cluster.agreed_leader() == (successor, epoch2)
        assert leader_epochs(cluster.replicas[leader].log()) == [epoch]
        assert term_ended(cluster.replicas[leader].log(), epoch)
        print(f"[{backend}] SIGTERM handover {handover:.2f} s")
        cluster.assert_no_crash()


async def all_answer(cluster: LocalCluster) -> bool:
    return len(await cluster.reports()) == len(cluster.replicas)
