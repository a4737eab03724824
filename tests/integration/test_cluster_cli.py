"""The user's path: `cluster up`, topics through the CLI, kill the leader by PID, `up` again."""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ha_sc.cluster.ports import block, read_ephemeral
from tests.net import free_port
from tests.waiting import eventually_sync

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
    """``cluster status`` as JSON; it exits 1 exactly when no replica leads."""
    result = ha_sc(directory, "cluster", "status", "-O", "json", check=False)
    doc: dict[str, Any] = json.loads(result.stdout)
    assert result.returncode == (0 if doc["leader"] is not None else 1), result.stderr
    return doc


def recorded(directory: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((directory / "cluster.json").read_text())
    return doc


def addresses(doc: dict[str, Any]) -> list[str]:
    found = [r[k] for r in doc["replicas"] for k in ("public", "private", "raft") if r[k]]
    return found + [s[k] for s in doc["spus"] for k in ("public", "private")]


def pids(doc: dict[str, Any]) -> list[int | None]:
    return [member["pid"] for member in [*doc["replicas"], *doc["spus"]]]


@pytest.fixture
def cluster_dir(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "cluster"
    try:
        yield directory
    finally:
        retire(directory)


def retire(directory: Path) -> None:
    """``cluster down``, then delete the cluster (its logs kept beside it): its port block
    is free again for the next test run."""
    ha_sc(directory, "cluster", "down", check=False)
    if (directory / "logs").exists():
        shutil.move(directory / "logs", directory.with_name(directory.name + "-logs"))
    shutil.rmtree(directory, ignore_errors=True)


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
    now = eventually_sync(
        lambda: status(cluster_dir),
        until=lambda now: now["leader"] is not None and now["leader"]["id"] != old["id"],
        timeout=20,
        interval=0.2,
        what="a new leader",
    )
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


def test_sc_settings_given_to_up_reach_every_replica_and_stay(
    cluster_dir: Path, tmp_path: Path
) -> None:
    config = tmp_path / "sc.toml"
    config.write_text('[spu_link]\nhold = "750ms"\n\n[write_window]\nlimit = 32\n')
    ha_sc(cluster_dir, "cluster", "up", "--replicas", "2", "--spus", "0",
          "--sc-config", str(config), "--controller-resync", "1500ms",
          "--max-partitions-per-topic", "4")  # fmt: skip
    for replica in ("sc-1", "sc-2"):
        log = (cluster_dir / "logs" / f"{replica}.log").read_text()
        assert f"sc {replica} settings: spu_link health_timeout=1.2s" in log
        assert "keepalive_interval=0.5s hold=0.75s" in log  # from the file
        assert "settings: write_window start=16 limit=32 slow=0.1s" in log
        assert "settings: controller resync=1.5s min_interval=0.05s" in log  # a flag
    refused = ha_sc(cluster_dir, "topic", "create", "wide", "-p", "5", "-r", "1", check=False)
    assert refused.returncode != 0
    assert "exceed the limit of 4 partitions per topic" in refused.stdout + refused.stderr

    options = recorded(cluster_dir)["sc_options"]
    assert options["config"] == str(config.resolve())
    assert options["tuning"] == {"controller": {"resync": 1.5}}
    leader = status(cluster_dir)["leader"]
    os.kill(leader["pid"], signal.SIGKILL)
    log_path = cluster_dir / "logs" / f"{leader['id']}.log"
    before = len(log_path.read_text())
    ha_sc(cluster_dir, "cluster", "up")  # no flags: the recorded settings again
    again = log_path.read_text()[before:]
    assert "hold=0.75s" in again and "controller resync=1.5s" in again


def test_sc_settings_that_cannot_work_stop_up_before_anything_starts(
    cluster_dir: Path, tmp_path: Path
) -> None:
    config = tmp_path / "sc.toml"
    config.write_text("[spu_link]\nhodl = 0.5\n")
    refused = ha_sc(cluster_dir, "cluster", "up", "--sc-config", str(config), check=False)
    assert refused.returncode != 0 and "unknown key 'spu_link.hodl'" in refused.stderr
    refused = ha_sc(cluster_dir, "cluster", "up", "--spu-link-hold", "3s", check=False)
    assert refused.returncode != 0
    assert "must stay below the SPU's sc_timeout 2 s" in refused.stderr
    assert not (cluster_dir / "cluster.json").exists()


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
    eventually_sync(
        lambda: status(cluster_dir),
        until=lambda after: (
            after["leader"] is not None
            and after["leader"]["id"] != shrunk["leader"]["id"]
            and [s["status"] for s in after["spus"]] == ["Online"] * 2
        ),
        timeout=20,
        interval=0.2,
        what="a new leader of three and both SPUs online",
    )
    ha_sc(cluster_dir, "topic", "create", "after-shrinking", "-p", "1", "-r", "2")
    refused = ha_sc(cluster_dir, "cluster", "up", "--replicas", "2", "--spus", "2", check=False)
    assert refused.returncode != 0 and "cluster remove" in refused.stderr


def rejoined(replica_id: str, now: dict[str, Any]) -> bool:
    """A leader is known and ``replica_id`` is a leader or standby with no lag."""
    back = next(r for r in now["replicas"] if r["id"] == replica_id)
    return now["leader"] is not None and back["role"] in ("leader", "standby") and back["lag"] == 0


def test_a_killed_leader_comes_back_on_its_recorded_ports_and_rejoins(cluster_dir: Path) -> None:
    ha_sc(cluster_dir, "cluster", "up", "--replicas", "3", "--spus", "1")
    made = recorded(cluster_dir)
    ports = [int(address.rsplit(":", 1)[1]) for address in addresses(made)]
    assert len(set(ports)) == len(ports)
    ephemeral = read_ephemeral()
    assert not [port for port in ports if port in ephemeral]

    for _ in range(3):
        old = status(cluster_dir)["leader"]
        assert old is not None
        os.kill(old["pid"], signal.SIGKILL)
        again = ha_sc(cluster_dir, "cluster", "up")  # no flags: the recorded counts
        assert f"started SC replica {old['id']}" in again.stdout
        assert addresses(recorded(cluster_dir)) == addresses(made)
        now = eventually_sync(
            lambda: status(cluster_dir),
            until=functools.partial(rejoined, old["id"]),
            timeout=20,
            interval=0.2,
            what=f"{old['id']} back and caught up",
        )
        back = next(r for r in now["replicas"] if r["id"] == old["id"])
        assert back["pid"] != old["pid"]
        assert now["leader"]["epoch"] > old["epoch"]
        assert [s["status"] for s in now["spus"]] == ["Online"]


def test_a_taken_port_stops_cluster_up_before_anything_starts(cluster_dir: Path) -> None:
    ha_sc(cluster_dir, "cluster", "up", "--replicas", "1", "--spus", "1")
    ha_sc(cluster_dir, "cluster", "down")
    host, port = recorded(cluster_dir)["spus"][0]["private"].rsplit(":", 1)
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind((host, int(port)))
        squatter.listen()
        refused = ha_sc(cluster_dir, "cluster", "up", check=False)
    assert refused.returncode == 1
    assert "nothing was started" in refused.stderr
    assert f"port {port} (private port of SPU 5001) is held by pid {os.getpid()}" in refused.stderr
    assert pids(recorded(cluster_dir)) == [None, None]
    assert status(cluster_dir)["leader"] is None


def test_two_cluster_up_at_once_on_one_dir_lose_nothing(cluster_dir: Path) -> None:
    env = {**os.environ, "HA_SC_DIR": str(cluster_dir)}
    command = [sys.executable, "-m", "ha_sc.cli", "--log-level", "warning", "cluster", "up",
               "--replicas", "3", "--spus", "2"]  # fmt: skip
    runs = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=90) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    members = pids(recorded(cluster_dir))
    assert len(members) == 5 and None not in members
    # one process per member, each recorded: none started twice, none lost
    ours = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if str(cluster_dir).encode() in cmdline and b"ha_sc.cli" in cmdline:
                ours.add(int(entry.name))
    assert ours == set(members)
    assert status(cluster_dir)["leader"] is not None


def test_cluster_status_exits_1_without_a_leader(cluster_dir: Path) -> None:
    ha_sc(cluster_dir, "cluster", "up", "--replicas", "3", "--spus", "0")
    first = status(cluster_dir)
    assert first["leader"] is not None
    standby = next(r for r in first["replicas"] if r["role"] == "standby")
    for pid in (first["leader"]["pid"], standby["pid"]):
        os.kill(pid, signal.SIGKILL)  # one of three left: no majority
    result = eventually_sync(
        lambda: ha_sc(cluster_dir, "cluster", "status", check=False),
        until=lambda result: result.returncode != 0,
        timeout=20,
        interval=0.2,
        what="cluster status failing",
    )
    assert result.returncode == 1 and "no SC replica leads" in result.stderr
    ha_sc(cluster_dir, "cluster", "down")
    none = ha_sc(cluster_dir, "cluster", "status", check=False)
    assert none.returncode == 1 and "no SC replica answers" in none.stderr


def test_a_second_sc_run_on_one_data_dir_is_refused(tmp_path: Path) -> None:
    env = {**os.environ, "HOME": str(tmp_path)}

    def sc_run() -> list[str]:
        return [sys.executable, "-m", "ha_sc.cli", "--log-level", "warning", "sc", "run",
                "--id", "sc-7", "--raft-address", f"127.0.0.1:{free_port()}",
                "--public-address", f"127.0.0.1:{free_port()}",
                "--private-address", f"127.0.0.1:{free_port()}"]  # fmt: skip

    lock = tmp_path / ".ha-sc" / "sc-7" / "process.lock"  # the data dir follows --id
    quiet = subprocess.DEVNULL
    first = subprocess.Popen(sc_run(), env=env, stdout=quiet, stderr=quiet)
    try:

        def locked() -> bool:
            assert first.poll() is None, "the first sc run ended"
            return lock.exists() and lock.read_text() == f"{first.pid}\n"

        eventually_sync(locked, timeout=30, interval=0.1, what="the first run's lock")
        second = subprocess.run(
            sc_run(), env=env, capture_output=True, text=True, timeout=60, check=False
        )
        assert second.returncode == 1
        assert f"is in use by process {first.pid}" in second.stderr
        assert first.poll() is None  # the first runs on
    finally:
        first.kill()
        first.wait()


@pytest.mark.etcd
def test_two_clusters_on_one_machine_get_blocks_that_do_not_overlap(tmp_path: Path) -> None:
    dirs = {"raft": tmp_path / "a", "etcd": tmp_path / "b"}
    runs = {}
    try:
        for backend, directory in dirs.items():
            env = {**os.environ, "HA_SC_DIR": str(directory)}
            command = [sys.executable, "-m", "ha_sc.cli", "--log-level", "warning", "cluster",
                       "up", "--replicas", "1", "--spus", "1", "--backend", backend]  # fmt: skip
            runs[backend] = subprocess.Popen(
                command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
        outputs = {backend: run.communicate(timeout=90) for backend, run in runs.items()}
        assert {b: run.returncode for b, run in runs.items()} == {"raft": 0, "etcd": 0}, outputs
        blocks = {}
        for backend, directory in dirs.items():
            doc = recorded(directory)
            used = addresses(doc)
            if backend == "etcd":
                used += [*doc["etcd"]["endpoints"], doc["etcd"]["peer"]]
            ports = {int(address.rsplit(":", 1)[1]) for address in used}
            assert all(port in block(doc["base_port"]) for port in ports)
            assert status(directory)["leader"] is not None
            blocks[backend] = block(doc["base_port"])
        assert not blocks["raft"].overlaps(blocks["etcd"])
    finally:
        for directory in dirs.values():
            retire(directory)
