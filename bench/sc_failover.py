"""SC failover as SPUs see it: SIGKILL of the SC leader until every SPU has a full sync
from the new leader.

    .venv/bin/python -m bench.sc_failover [--backend raft|etcd|both] [--trials 20]

Runs `ha-sc cluster up --replicas 3 --spus 3` in a temporary directory, then per trial:
kill the leader (SIGKILL, by the PID in the cluster file), read each SPU's log for its
first full sync at an epoch above the old leader's (log timestamps, millisecond
resolution), and bring the killed replica back with `cluster up`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.common import machine, summary

FULL_SYNC = re.compile(r"^(\S+ \S+) .*full sync at epoch (\d+)")


def ha_sc(directory: Path, *args: str) -> str:
    env = {**os.environ, "HA_SC_DIR": str(directory)}
    env.pop("HA_SC_ENDPOINTS", None)
    return subprocess.run(
        [sys.executable, "-m", "ha_sc.cli", "--log-level", "warning", *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout


def status(directory: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(ha_sc(directory, "cluster", "status", "-O", "json"))
    return doc


def first_sync_after(log: Path, epoch: int) -> float | None:
    for line in log.read_text().splitlines():
        match = FULL_SYNC.match(line)
        if match and int(match.group(2)) > epoch:
            stamp = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f")
            return stamp.timestamp()
    return None


def trial(directory: Path) -> float:
    while (now := status(directory))["leader"] is None:
        time.sleep(0.1)
    leader = now["leader"]
    logs = [directory / "logs" / f"spu-{s['id']}.log" for s in now["spus"]]
    killed = time.time()
    os.kill(leader["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 30
    while True:
        synced = [first_sync_after(log, leader["epoch"]) for log in logs]
        if all(t is not None for t in synced):
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"SPUs not resynced: {synced}")
        time.sleep(0.05)
    ha_sc(
        directory,
        "cluster",
        "up",
        "--replicas",
        "3",
        "--spus",
        "3",
        "--backend",
        status_backend(directory),
    )
    time.sleep(1.0)
    return max(t for t in synced if t is not None) - killed


def status_backend(directory: Path) -> str:
    return str(json.loads((directory / "cluster.json").read_text())["backend"])


def run(backend: str, trials: int) -> None:
    with tempfile.TemporaryDirectory(prefix=f"bench-sc-{backend}-") as tmp:
        directory = Path(tmp)
        ha_sc(directory, "cluster", "up", "--replicas", "3", "--spus", "3", "--backend", backend)
        try:
            ha_sc(directory, "topic", "create", "bench", "-p", "3", "-r", "2")
            samples = [trial(directory) for _ in range(trials)]
        finally:
            ha_sc(directory, "cluster", "down")
        print(f"[{backend}] 3 SC replicas, 3 SPUs, {trials} trials")
        print(
            f"  SIGKILL SC leader -> every SPU fully synced by the new leader: {summary(samples)}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["raft", "etcd", "both"], default="both")
    parser.add_argument("--trials", type=int, default=20)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    for backend in ["raft", "etcd"] if args.backend == "both" else [args.backend]:
        run(backend, args.trials)


if __name__ == "__main__":
    main()
