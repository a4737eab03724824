"""SPUs following a new SC leader: SIGSTOP of the SC leader until every SPU is synced by
the new leader (full or by cursor), measured from the new leader's win.

    .venv/bin/python -m bench.spu_follow [--backend raft|etcd] [--trials 10]

Runs `ha-sc cluster up --replicas 3 --spus 3` in a temporary directory; per trial:
SIGSTOP the leader (by the PID in the cluster file), read the new leader's log for
`became leader` (won, cache caught up: it serves SPUs from then) and each SPU's log
for its first sync at a higher epoch (log timestamps, millisecond resolution),
then SIGCONT the old leader and wait until the cluster is warm again. Without leader
notices an SPU leaves a frozen leader only after its 2 s SC timeout.
"""

from __future__ import annotations

import argparse
import signal
from pathlib import Path

from bench.common import machine, summary
from bench.local_cluster import local_cluster
from bench.sc_failover import signal_leader


def trial(directory: Path) -> tuple[float, float]:
    """(SIGSTOP -> new leader acting, new leader acting -> every SPU synced by it)."""
    takeover = signal_leader(directory, signal.SIGSTOP, 60, afterwards=signal.SIGCONT)
    return takeover.won - takeover.faulted, takeover.synced - takeover.won


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
