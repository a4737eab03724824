"""deploy/etcd/start-local.sh for real: three etcd members on free loopback ports, all
healthy by ``etcdctl endpoint health``, a write through one read through another, and a
SIGTERM to the script stops every member it started."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.net import free_port
from tests.waiting import eventually_sync

pytestmark = pytest.mark.etcd

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "etcd" / "start-local.sh"
STOP_TIMEOUT = 20.0
MEMBERS = ("etcd-1", "etcd-2", "etcd-3")


def etcdctl(endpoints: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["etcdctl", f"--endpoints={','.join(endpoints)}", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=20,
    )


def running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_start_local_runs_three_healthy_members_and_stops_them(tmp_path: Path) -> None:
    clients = [free_port() for _ in MEMBERS]
    peers = [free_port() for _ in MEMBERS]
    endpoints = [f"127.0.0.1:{p}" for p in clients]
    env = {
        **os.environ,
        "ETCD_CLIENT_PORTS": " ".join(map(str, clients)),
        "ETCD_PEER_PORTS": " ".join(map(str, peers)),
    }
    data = tmp_path / "etcd"
    with (tmp_path / "script.log").open("wb") as log:
        script = subprocess.Popen(
            ["bash", str(SCRIPT), str(data)], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    pids: list[int] = []
    try:
        eventually_sync(
            lambda: "etcd cluster healthy" in (tmp_path / "script.log").read_text(),
            what="the script reports a healthy cluster",
            timeout=60,
        )
        pids = [int((data / f"{name}.pid").read_text()) for name in MEMBERS]
        health = etcdctl(endpoints, "endpoint", "health")
        assert health.returncode == 0, health.stderr
        assert health.stderr.count("is healthy") == len(MEMBERS), health.stderr
        assert etcdctl(endpoints[:1], "put", "/ha-sc/probe", "1").returncode == 0
        got = etcdctl(endpoints[2:], "get", "--print-value-only", "/ha-sc/probe")
        assert got.stdout.strip() == "1"
        members = etcdctl(endpoints[:1], "member", "list")
        assert sorted(line.split(", ")[2] for line in members.stdout.splitlines()) == list(MEMBERS)

        script.send_signal(signal.SIGTERM)
        assert script.wait(STOP_TIMEOUT) != 0  # ended by a signal
        assert not any(running(pid) for pid in pids)
    finally:
        if script.poll() is None:
            script.kill()
            script.wait(STOP_TIMEOUT)
        for pid in pids:  # only the members this test's script started
            if running(pid):
                os.kill(pid, signal.SIGKILL)
