"""SPUs following a new SC leader: SIGSTOP of the SC leader until every SPU has a full
sync from the new leader, measured from the new leader's win.

    .venv/bin/python -m bench.spu_follow [--backend raft|etcd] [--trials 10]

Runs `ha-sc cluster up --replicas 3 --spus 3` in a temporary directory; per trial:
SIGSTOP the leader (by the PID in the cluster file), read the new leader's log for
`became leader` (won, cache caught up: it serves SPUs from then) and each SPU's log
for its first full sync at a higher epoch (log timestamps, millisecond resolution),
then SIGCONT the old leader and wait until the cluster is warm again. Without leader
notices an SPU leaves a frozen leader only after its 2 s SC timeout.
"""

from __future__ import annotations

import argparse
import os
import signal
import time
from pathlib import Path

from bench.common import machine, summary
from bench.local_cluster import local_cluster
from bench.sc_failover import BECAME_LEADER, FULL_SYNC, first_after, warm


def trial(directory: Path) -> tuple[float, float]:
    """(SIGSTOP -> new leader acting, new leader acting -> every SPU synced by it)."""
    now = warm(directory)
    leader = now["leader"]
    assert isinstance(leader, dict)
    logs = directory / "logs"
    spu_logs = [logs / f"spu-{s['id']}.log" for s in now["spus"]]  # type: ignore[attr-defined]
    sc_logs = [logs / f"{r['id']}.log" for r in now["replicas"] if r["id"] != leader["id"]]  # type: ignore[attr-defined]
    stopped = time.time()
    os.kill(leader["pid"], signal.SIGSTOP)
    try:
        deadline = time.monotonic() + 60
        while True:
            won = [first_after(log, BECAME_LEADER, leader["epoch"]) for log in sc_logs]
            synced = [first_after(log, FULL_SYNC, leader["epoch"]) for log in spu_logs]
            if any(won) and all(t is not None for t in synced):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"SPUs not on the new leader: {synced}")
            time.sleep(0.05)
    finally:
        os.kill(leader["pid"], signal.SIGCONT)
    acting = min(t for t in won if t is not None)
    return acting - stopped, max(t for t in synced if t is not None) - acting


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["raft", "etcd"], default="raft")
    parser.add_argument("--trials", type=int, default=10)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    with local_cluster(args.backend) as directory:
        samples = [trial(directory) for _ in range(args.trials)]
    print(f"[{args.backend}] 3 SC replicas, 3 SPUs, {args.trials} trials")
    print(f"  SIGSTOP SC leader -> new leader acting:          {summary([s[0] for s in samples])}")
    print(
        f"  new leader acting -> every SPU fully synced by it: {summary([s[1] for s in samples])}"
    )


if __name__ == "__main__":
    main()
