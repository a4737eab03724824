"""What filling a store costs each process: the fill's wall time and the CPU seconds every
SC replica, SPU and managed etcd spent on it; then, on the same cluster, an idle span
(as `bench.idle_cluster`) and SIGKILL failovers of the SC leader (as `bench.sc_failover`)
if asked, so that a 100k store is filled once for all three.

    .venv/bin/python -m bench.fill_cpu [--backend raft|etcd] [--partitions 30000]
        [--concurrency 8] [--idle-minutes 0] [--failover-trials 0] [cluster up flags...]

`ha-sc cluster up --replicas 3 --spus 3` in a temporary directory, then topics of 1000
partitions x 2 replicas through the API until every partition is Online
(`bench.store_fill`). CPU is utime + stime from /proc/<pid>/stat at the start and the end
of the fill (`bench.idle_cluster.cpu_seconds`). On a shared machine the wall time follows
the load; the CPU seconds much less so, which is what makes two trees comparable.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from pathlib import Path

from bench.common import machine, summary
from bench.idle_cluster import cpu_seconds, processes
from bench.local_cluster import local_cluster
from bench.sc_failover import trial
from bench.store_fill import CONCURRENCY, fill, leadership_changes, terms_won


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["raft", "etcd"], default="etcd")
    parser.add_argument("--partitions", type=int, default=30_000)
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY)
    parser.add_argument("--idle-minutes", type=float, default=0.0)
    parser.add_argument("--failover-trials", type=int, default=0)
    args, flags = parser.parse_known_args()
    print(f"machine: {machine()}; load average at start {os.getloadavg()[0]:.1f}", flush=True)
    with local_cluster(args.backend, up_flags=flags) as directory:
        pids = processes(directory)
        before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        started = time.monotonic()
        asyncio.run(fill(directory, args.partitions, concurrency=args.concurrency))
        filled = time.monotonic() - started
        spent = {name: cpu_seconds(pid) - before[name] for name, pid in pids.items()}
        print(
            f"[{args.backend}] {args.partitions} partitions x 2 replicas filled (every "
            f"partition Online) in {filled:.1f} s, {leadership_changes(directory)} leadership "
            f"changes; load average at the end {os.getloadavg()[0]:.1f}"
        )
        print(f"  CPU seconds while filling: {sum(spent.values()):.1f} in all")
        for name, seconds in sorted(spent.items()):
            print(f"    {name:10s} {seconds:6.1f} s")
        if args.idle_minutes > 0:
            idle(directory, pids, args.idle_minutes)
        if args.failover_trials > 0:
            samples = [trial(directory, args.backend) for _ in range(args.failover_trials)]
            load = os.getloadavg()[0]
            print(f"  {args.failover_trials} SIGKILLs of the SC leader, load {load:.1f}:")
            print(f"    new leader acting:           {summary([s[0] for s in samples])}")
            print(f"    every SPU synced by it:      {summary([s[1] for s in samples])}")
            print(f"    SPU syncs by cursor: {sum(s[2] for s in samples)} of {3 * len(samples)}")


def idle(directory: Path, pids: dict[str, int], minutes: float) -> None:
    """Leave the cluster alone for ``minutes``: leadership changes and CPU per process."""
    won, load = terms_won(directory), os.getloadavg()[0]
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    started = time.monotonic()
    end = started + minutes * 60
    while (left := end - time.monotonic()) > 0:
        time.sleep(min(10.0, left))
    span = time.monotonic() - started
    print(
        f"  idle {span / 60:.1f} min: {terms_won(directory) - won} leadership changes; "
        f"load average {load:.1f} -> {os.getloadavg()[0]:.1f}"
    )
    for name, pid in sorted(pids.items()):
        share = (cpu_seconds(pid) - before[name]) / span
        print(f"    {name:10s} {share * 100:5.1f}% of one core while idle")


if __name__ == "__main__":
    main()
