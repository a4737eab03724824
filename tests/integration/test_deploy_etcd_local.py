"""deploy/etcd/start-local.sh for real: three etcd members on free loopback ports, all
healthy by ``etcdctl endpoint health``, a write through one read through another, and a
SIGTERM to the script stops every member it started; with ``--tls`` the members want
client certificates, and the ``sc run`` flags the script prints reach them."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner

from election.etcd_access import EtcdAccess
from ha_sc.cli.main import cli
from ha_sc.kv.api import CreateOp
from ha_sc.kv.etcd import EtcdKv
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


@contextmanager
def started_script(tmp_path: Path, *options: str) -> Iterator[tuple[list[int], list[str], str]]:
    """The script running with ``options``: its members' PIDs, client ports and the line
    saying the cluster is healthy; every member it started is gone afterwards."""
    clients = [free_port() for _ in MEMBERS]
    env = {
        **os.environ,
        "ETCD_CLIENT_PORTS": " ".join(map(str, clients)),
        "ETCD_PEER_PORTS": " ".join(str(free_port()) for _ in MEMBERS),
    }
    data = tmp_path / "etcd"
    log_path = tmp_path / "script.log"
    with log_path.open("wb") as log:
        script = subprocess.Popen(
            ["bash", str(SCRIPT), *options, str(data)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    pids: list[int] = []
    try:
        eventually_sync(
            lambda: "etcd cluster healthy" in log_path.read_text(),
            what="the script reports a healthy cluster",
            timeout=60,
        )
        pids = [int((data / f"{name}.pid").read_text()) for name in MEMBERS]
        healthy = next(line for line in log_path.read_text().splitlines() if "healthy" in line)
        yield pids, [str(port) for port in clients], healthy
    finally:
        if script.poll() is None:
            script.send_signal(signal.SIGTERM)
            script.wait(STOP_TIMEOUT)
        for pid in pids:  # only the members this test's script started
            if running(pid):
                os.kill(pid, signal.SIGKILL)


def sc_run_flags(healthy: str) -> dict[str, list[str]]:
    """The flags the script's last line prints, by name."""
    words = shlex.split(healthy.partition(": ")[2])
    flags: dict[str, list[str]] = {}
    for name, value in zip(words[::2], words[1::2], strict=True):
        flags.setdefault(name, []).append(value)
    return flags


async def test_start_local_tls_wants_client_certificates_and_prints_flags_that_work(
    tmp_path: Path,
) -> None:
    with started_script(tmp_path, "--tls") as (_, ports, healthy):
        flags = sc_run_flags(healthy)
        assert sorted(flags) == [
            "--etcd-ca", "--etcd-cert", "--etcd-endpoint", "--etcd-key", "--etcd-max-txn-ops",
        ]  # fmt: skip
        assert flags["--etcd-max-txn-ops"] == ["1024"]
        assert [e.rpartition(":")[2] for e in flags["--etcd-endpoint"]] == ports
        plain = etcdctl(flags["--etcd-endpoint"], "--cacert", flags["--etcd-ca"][0], "get", "x")
        assert plain.returncode != 0  # no client certificate: refused
        access = EtcdAccess(
            endpoints=tuple(flags["--etcd-endpoint"]),
            ca_file=Path(flags["--etcd-ca"][0]),
            cert_file=Path(flags["--etcd-cert"][0]),
            key_file=Path(flags["--etcd-key"][0]),
        )
        kv = EtcdKv(
            list(access.endpoints),
            root="/probe/",
            credentials=access.load(),
            max_txn_ops=int(flags["--etcd-max-txn-ops"][0]),
        )
        try:
            revision = await kv.create("topic", "orders", b"spec")
            entry = await kv.get("topic", "orders")
            assert entry is not None and entry.revision == revision
            # the members take a topic's 1000 partitions in one transaction
            batch = [CreateOp("partitions", f"orders-{n}", b"spec") for n in range(1000)]
            assert len(set(await kv.write_batch(batch))) == 1
        finally:
            await kv.close()
        words = [w for name, values in flags.items() for v in values for w in (name, v)]
        printed = CliRunner().invoke(
            cli, ["sc", "run", "--backend", "etcd", *words, "--print-settings"]
        )
        assert printed.exit_code == 0, printed.output  # sc run accepts them as printed
