"""What filling a store costs each process: the fill's wall time and the CPU seconds every
SC replica, SPU and managed etcd spent on it.

    .venv/bin/python -m bench.fill_cpu [--backend raft|etcd] [--partitions 30000]
        [--concurrency 8] [cluster up flags...]

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

from bench.common import machine
from bench.idle_cluster import cpu_seconds, processes
from bench.local_cluster import local_cluster
from bench.store_fill import CONCURRENCY, fill, leadership_changes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["raft", "etcd"], default="etcd")
    parser.add_argument("--partitions", type=int, default=30_000)
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY)
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


if __name__ == "__main__":
    main()
