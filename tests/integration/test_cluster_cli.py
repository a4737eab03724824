"""The user's path: `cluster up`, topics through the CLI, kill the leader by PID, `up` again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.raft, pytest.mark.slow]


def ha_sc(directory: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HA_SC_DIR": str(directory)}
    env.pop("HA_SC_ENDPOINTS", None)
    result = subprocess.run(
        [sys.executable, "-m", "ha_sc.cli", "--log-level", "warning", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def status(directory: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(ha_sc(directory, "cluster", "status", "-O", "json").stdout)
    return doc


@pytest.fixture
def cluster_dir(tmp_path: Path) -> Iterator[Path]:
    try:
        yield tmp_path
    finally:
        ha_sc(tmp_path, "cluster", "down", check=False)


def test_cluster_up_topics_failover_and_restart(cluster_dir: Path) -> None:
    ha_sc(cluster_dir, "cluster", "up", "--replicas", "3", "--spus", "3")
    first = status(cluster_dir)
    assert first["leader"] is not None
    assert [s["status"] for s in first["spus"]] == ["Online"] * 3
    assert sorted(r["role"] for r in first["replicas"]) == ["leader", "standby", "standby"]

    ha_sc(cluster_dir, "topic", "create", "orders", "-p", "3", "-r", "2")
    partitions = json.loads(ha_sc(cluster_dir, "partition", "list", "-O", "json").stdout)
    assert len(partitions) == 3

    old = first["leader"]
    os.kill(old["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 20
    while True:
        now = status(cluster_dir)
        if now["leader"] is not None and now["leader"]["id"] != old["id"]:
            break
        assert time.monotonic() < deadline, now
        time.sleep(0.2)
    assert now["leader"]["epoch"] > old["epoch"]
    assert [r["role"] for r in now["replicas"] if r["id"] == old["id"]] == ["down"]
    topics = json.loads(ha_sc(cluster_dir, "topic", "list", "-O", "json").stdout)
    assert [t["name"] for t in topics] == ["orders"]
    ha_sc(cluster_dir, "topic", "create", "payments", "-p", "1", "-r", "2")

    ha_sc(cluster_dir, "cluster", "up", "--replicas", "3", "--spus", "3")
    back = status(cluster_dir)
    assert sorted(r["role"] for r in back["replicas"]) == ["leader", "standby", "standby"]
    down = ha_sc(cluster_dir, "cluster", "down").stdout
    assert "6 processes stopped" in down


def test_lease_timings_given_to_up_reach_every_replica_and_stay(cluster_dir: Path) -> None:
    ha_sc(cluster_dir, "cluster", "up", "--replicas", "1", "--spus", "0", "--lease-ttl", "2",
          "--renew-deadline", "1.5")  # fmt: skip
    log = (cluster_dir / "logs" / "sc-1.log").read_text()
    assert "sc lease on raft: ttl 2 s, renew deadline 1.5 s, renewed every 0.1 s" in log
    refused = ha_sc(cluster_dir, "cluster", "up", "--replicas", "1", "--lease-ttl", "3",
                    check=False)  # fmt: skip
    assert refused.returncode != 0
    assert "must use the same lease timings" in refused.stderr
    assert status(cluster_dir)["leader"] is not None  # nothing was stopped


def test_the_replica_set_grows_and_shrinks_while_running(cluster_dir: Path) -> None:
    ha_sc(cluster_dir, "cluster", "up", "--replicas", "3", "--spus", "2")
    ha_sc(cluster_dir, "topic", "create", "orders", "-p", "2", "-r", "2")
    first = status(cluster_dir)["leader"]

    grown = ha_sc(cluster_dir, "cluster", "up", "--replicas", "5", "--spus", "2").stdout
    assert "SC replica sc-4 joined the set" in grown
    assert "SC replica sc-5 joined the set" in grown
    now = status(cluster_dir)
    assert [r["id"] for r in now["replicas"]] == ["sc-1", "sc-2", "sc-3", "sc-4", "sc-5"]
    assert sorted(r["role"] for r in now["replicas"]) == ["leader"] + ["standby"] * 4
    assert now["leader"]["epoch"] == first["epoch"]  # growing moved no leadership
    assert {r["lag"] for r in now["replicas"]} == {0}

    # remove the leader and one of the original standbys: the rest keep serving
    for leaving in (
        now["leader"]["id"],
        next(r["id"] for r in now["replicas"][:3] if r["role"] == "standby"),
    ):
        out = ha_sc(cluster_dir, "cluster", "remove", leaving).stdout
        assert f"replica {leaving} removed" in out
        assert not (cluster_dir / leaving).exists()
    shrunk = status(cluster_dir)
    assert len(shrunk["replicas"]) == 3
    assert shrunk["leader"] is not None and shrunk["leader"]["epoch"] > first["epoch"]
    assert [s["status"] for s in shrunk["spus"]] == ["Online"] * 2

    # three members now: a SIGKILLed leader is replaced by a majority of the three
    os.kill(shrunk["leader"]["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 20
    while True:
        after = status(cluster_dir)
        online = [s["status"] for s in after["spus"]] == ["Online"] * 2
        if (
            after["leader"] is not None
            and after["leader"]["id"] != shrunk["leader"]["id"]
            and online
        ):
            break
        assert time.monotonic() < deadline, after
        time.sleep(0.2)
    ha_sc(cluster_dir, "topic", "create", "after-shrinking", "-p", "1", "-r", "2")
    refused = ha_sc(cluster_dir, "cluster", "up", "--replicas", "2", "--spus", "2", check=False)
    assert refused.returncode != 0 and "cluster remove" in refused.stderr
