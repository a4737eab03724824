"""What holding a large store's replicas costs each SPU: its event loop's stalls while
the store fills, while idle and across SC failovers; its CPU while idle; its memory.

    .venv/bin/python -m bench.spu_at_scale [--partitions 100000] [--idle 60] [--trials 10]

`ha-sc cluster up --replicas 3 --spus 3 --backend raft` (default timings) in a temporary
directory, filled with topics of 1000 partitions x 2 replicas (`bench.store_fill`: each
SPU then holds about 2/3 of the partitions); ``--idle`` seconds with nothing asked, each
SPU's CPU (utime + stime, share of one core) measured; then ``--trials`` SIGKILLs of the
SC leader as `bench.sc_failover` makes them (new leader acting, every SPU synced).
Stalls are the SPUs' own ``event loop stalled for N ms`` log lines (over 0.2 s,
``ha_sc/awake.py``), counted per phase; peak RSS is the kernel's VmHWM of each SPU.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import time
from datetime import datetime
from pathlib import Path

from bench.common import machine, summary
from bench.idle_cluster import cpu_seconds, processes
from bench.local_cluster import local_cluster
from bench.sc_failover import trial
from bench.store_fill import fill, leadership_changes

STALL = re.compile(r"^(\S+ \S+) .*event loop stalled for (\d+) ms")


def stalls(log: Path, start: float, end: float) -> list[int]:
    """Milliseconds of each stall ``log`` records between ``start`` and ``end`` (epoch s)."""
    found = []
    for line in log.read_text().splitlines():
        match = STALL.match(line)
        if match:
            at = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
            if start <= at < end:
                found.append(int(match.group(2)))
    return found


def peak_rss_mib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) // 1024
    return 0


def describe(found: list[int]) -> str:
    if not found:
        return "none"
    over = sum(ms >= 1000 for ms in found)
    return f"{len(found)} (longest {max(found)} ms, {over} of 1 s or more)"


def run(partitions: int, idle: float, trials: int) -> None:
    with local_cluster("raft") as directory:
        logs = directory / "logs"
        began = time.time()
        asyncio.run(fill(directory, partitions))
        filled = time.time()
        spus = {n: p for n, p in processes(directory).items() if n.startswith("spu-")}
        before = {name: cpu_seconds(pid) for name, pid in spus.items()}
        load = os.getloadavg()[0]
        time.sleep(idle)
        idle_end = time.time()
        cpu = {n: (cpu_seconds(p) - before[n]) / (idle_end - filled) for n, p in spus.items()}
        rss = {name: peak_rss_mib(pid) for name, pid in spus.items()}
        load_after = os.getloadavg()[0]
        samples = [trial(directory, "raft") for _ in range(trials)]
        ended = time.time()
        print(
            f"[raft, default timings] 3 SC replicas, 3 SPUs, {partitions} partitions x 2 "
            f"replicas: filled in {filled - began:.0f} s, "
            f"{leadership_changes(directory)} leadership changes by the end"
        )
        for name in sorted(spus):
            log = logs / f"{name}.log"
            print(
                f"  {name}: idle CPU {cpu[name] * 100:.1f}% of a core (load {load:.1f} -> "
                f"{load_after:.1f}), peak RSS {rss[name]} MiB; loop stalls while filling "
                f"{describe(stalls(log, began, filled))}, idle "
                f"{describe(stalls(log, filled, idle_end))}, over the trials "
                f"{describe(stalls(log, idle_end, ended))}"
            )
        if samples:
            print(f"  SIGKILL SC leader -> new leader acting:  {summary([s[0] for s in samples])}")
            print(f"  SIGKILL SC leader -> every SPU synced:   {summary([s[1] for s in samples])}")
            print(f"  SPU syncs by cursor: {sum(s[2] for s in samples)} of {3 * len(samples)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--partitions", type=int, default=100_000)
    parser.add_argument("--idle", type=float, default=60.0, help="seconds left idle")
    parser.add_argument("--trials", type=int, default=10)
    args = parser.parse_args()
    print(f"machine: {machine()}; load average at start {os.getloadavg()[0]:.1f}")
    run(args.partitions, args.idle, args.trials)


if __name__ == "__main__":
    main()
