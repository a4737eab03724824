"""Clients route around a frozen replica: SC replicas as OS processes on Raft, one
SIGSTOPped (a standby, then the leader past its lease), CLI verbs and admin calls
answering meanwhile; a write repeated with one idempotency key gets one outcome.

Timings are printed (run with ``-s``), not asserted tightly: the bound asserted, lease
TTL + 5 s for the verb itself (the interpreter's start and imports, seconds on a loaded
machine, left out), only catches a client that waits out the frozen replica (its
timeout is 10 s)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import pytest

from tests.sc_processes import LocalCluster, computed, eventually

pytestmark = [pytest.mark.raft, pytest.mark.slow]

LEASE_TTL = 0.8
"""The Raft backend's default lease TTL."""
BOUND = LEASE_TTL + 5.0


FIRST: list[str] = []
"""The replica named first in the endpoint list (the frozen one: the worst case)."""


def cli(cluster: LocalCluster, *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    """One ``ha-sc`` verb against every replica, as its own process; its result and
    how long the verb took once the CLI was imported."""
    order = sorted(cluster.replicas, key=lambda r: r not in FIRST)
    env = {**os.environ, "HA_SC_ENDPOINTS": ",".join(cluster.public(r) for r in order)}
    env["HA_SC_DIR"] = str(cluster.base / "no-cluster-file")
    report = cluster.base / "verb-time.json"
    report.unlink(missing_ok=True)
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "chaos.timed_cli", str(report), "--log-level", "warning", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    wall = time.monotonic() - started
    elapsed = float(json.loads(report.read_text())["answer_s"])
    verb = " ".join(args)
    print(f"ha-sc {verb}: exit {result.returncode}, verb {elapsed:.2f} s, {wall:.2f} s in all")
    return result, elapsed


def answers(cluster: LocalCluster, *args: str) -> str:
    result, elapsed = cli(cluster, *args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert elapsed < BOUND, f"ha-sc {' '.join(args)} took {elapsed:.1f} s"
    return result.stdout


@contextmanager
def frozen(cluster: LocalCluster, name: str) -> Iterator[None]:
    member = cluster.replicas[name]
    member.signal(signal.SIGSTOP)
    FIRST[:] = [name]
    try:
        yield
    finally:
        FIRST.clear()
        member.signal(signal.SIGCONT)


async def leader_answers(cluster: LocalCluster, expected: str | None) -> str:
    """``GET /leader`` through the admin client (what ``cluster status`` shows of the
    leader; that verb reads the cluster file, which these processes have none of)."""
    async with cluster.admin(*sorted(cluster.replicas, key=lambda r: r not in FIRST)) as admin:
        started = time.monotonic()
        report = await admin.leader()
        elapsed = time.monotonic() - started
    print(f"admin.leader(): {elapsed:.2f} s")
    assert elapsed < BOUND
    assert report.leader is not None
    assert expected is None or report.leader.replica_id == expected
    return report.leader.replica_id


def topic_names(listing: str) -> set[str]:
    return {item["name"] for item in json.loads(listing)}


async def test_cli_verbs_answer_with_a_frozen_standby_then_a_frozen_leader(
    tmp_path: Path,
) -> None:
    with LocalCluster(tmp_path, backend="raft", replicas=3, spus=1) as cluster:
        leader, epoch = await cluster.start_all()
        standby = next(r for r in cluster.replicas if r != leader)
        with frozen(cluster, standby):
            answers(cluster, "topic", "create", "while-standby-frozen", "--partitions", "1")
            assert "while-standby-frozen" in topic_names(
                answers(cluster, "topic", "list", "-O", "json")
            )
            answers(cluster, "topic", "describe", "while-standby-frozen")
            answers(cluster, "partition", "list")
            answers(cluster, "spu", "list")
            await leader_answers(cluster, leader)
            answers(cluster, "topic", "delete", "while-standby-frozen")
            assert "while-standby-frozen" not in topic_names(
                answers(cluster, "topic", "list", "-O", "json")
            )
        async with cluster.admin() as admin:
            await admin.create_topic("before-leader-froze", computed(1, 1), wait=20)
        with frozen(cluster, leader):
            others = [r for r in cluster.replicas if r != leader]
            await eventually(
                lambda: cluster.agreed_leader(others, above=epoch), what="a new leader"
            )
            assert "before-leader-froze" in topic_names(
                answers(cluster, "topic", "list", "-O", "json")
            )
            answers(cluster, "topic", "describe", "before-leader-froze")
            answers(cluster, "partition", "list")
            answers(cluster, "spu", "list")
            new_leader = await leader_answers(cluster, None)
            assert new_leader != leader
            answers(cluster, "topic", "delete", "before-leader-froze")
            assert "before-leader-froze" not in topic_names(
                answers(cluster, "topic", "list", "-O", "json")
            )


async def test_a_write_repeated_with_one_key_gets_the_first_outcome(tmp_path: Path) -> None:
    with LocalCluster(tmp_path, backend="raft", replicas=3, spus=1) as cluster:
        leader, _ = await cluster.start_all()
        url = f"http://{cluster.public(leader)}/api/v1/topics"
        body = {
            "name": "once",
            "spec": {"replicas": {"computed": {"partitions": 1, "replication_factor": 1}}},
        }
        headers = {"Idempotency-Key": "create-once"}
        outcomes = []
        async with aiohttp.ClientSession() as http:
            for _ in range(2):
                async with http.post(url, json=body, headers=headers) as response:
                    outcomes.append((response.status, await response.json()))
            async with http.post(
                url, json=body, headers={"Idempotency-Key": "another"}
            ) as response:
                assert response.status == 409  # a different key is a different request
        assert outcomes[0][0] == outcomes[1][0] == 201
        assert outcomes[0][1] == outcomes[1][1]


async def test_a_create_repeated_on_a_new_leader_gets_the_first_outcome(
    tmp_path: Path,
) -> None:
    with LocalCluster(tmp_path, backend="raft", replicas=3, spus=1) as cluster:
        leader, epoch = await cluster.start_all()
        body = {
            "name": "across",
            "spec": {"replicas": {"computed": {"partitions": 1, "replication_factor": 1}}},
        }
        headers = {"Idempotency-Key": "create-across"}
        async with aiohttp.ClientSession() as http:
            url = f"http://{cluster.public(leader)}/api/v1/topics"
            async with http.post(url, json=body, headers=headers) as response:
                assert response.status == 201
                first = await response.json()
            with frozen(cluster, leader):
                others = [r for r in cluster.replicas if r != leader]
                new_leader, _ = await eventually(
                    lambda: cluster.agreed_leader(others, above=epoch), what="a new leader"
                )
                url = f"http://{cluster.public(new_leader)}/api/v1/topics"
                async with http.post(url, json=body, headers=headers) as response:
                    assert response.status == 201, await response.text()
                    again = await response.json()
                async with http.post(
                    url, json=body, headers={"Idempotency-Key": "another"}
                ) as response:
                    assert response.status == 409
        assert again["name"] == first["name"] == "across"
        assert again["meta"]["create_revision"] == first["meta"]["create_revision"]
