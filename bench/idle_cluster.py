"""A 100k-partition cluster filled through the API, then left idle: how long the fill
took, how often leadership changed, and the CPU each process used while idle.

    .venv/bin/python -m bench.idle_cluster [--backend raft|etcd|both]
        [--partitions 100000] [--idle-minutes 10] [--concurrency 8] [--keep-logs DIR]
        [cluster up flags...]

`ha-sc cluster up --replicas 3 --spus 3` (default timings unless flags are given) in a
temporary directory; topics of 1000 partitions x 2 replicas created through the API,
``--concurrency`` at a time, until every partition is Online (`bench.store_fill`); then
``--idle-minutes`` with nothing asked of the cluster. Leadership changes are terms won
after the first (the replicas' logs); CPU is each SC replica's and SPU's (and a managed
etcd's) utime + stime from /proc/<pid>/stat over the idle span, as a share of one core.
Why each term ended is counted from the same logs (``--keep-logs`` keeps them).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench.common import machine
from bench.local_cluster import layout, local_cluster, status
from bench.store_fill import CONCURRENCY, fill, leadership_changes, terms_won

TICKS = os.sysconf("SC_CLK_TCK")
LOST = re.compile(r"lost leadership of \S+ epoch=\d+: (.*)$", re.MULTILINE)


def why_terms_ended(directory: Path) -> Counter[str]:
    """How many terms ended for each reason the replicas' logs give (a renew deadline
    missed, resigned, taken over...)."""
    return Counter(
        reason
        for log in (directory / "logs").glob("sc-*.log")
        for reason in LOST.findall(log.read_text())
    )


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far (raises once the process is gone)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()  # after "pid (comm) "
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime: fields 14 and 15


@dataclass(frozen=True)
class IdleReport:
    filled: float
    changes_filling: int
    changes_idle: int
    idle: float
    cpu: dict[str, float]
    """Process name -> share of one core used while idle."""
    load: tuple[float, float]
    """Load average (1 min) when the idle span began and ended."""
    ended: Counter[str]
    """Why terms ended, fill and idle span together (``why_terms_ended``)."""


def processes(directory: Path) -> dict[str, int]:
    """SC replica and SPU PIDs of the running cluster, by name (sc-1, spu-5001, ...), and
    the etcd server's when the cluster runs its own."""
    now = status(directory)
    pids = {str(r["id"]): int(r["pid"]) for r in now["replicas"]}
    pids.update({f"spu-{s['id']}": int(s["pid"]) for s in now["spus"]})
    etcd = layout(directory).get("etcd") or {}
    if etcd.get("managed") and etcd.get("pid"):
        pids["etcd"] = int(etcd["pid"])
    return pids


def measure(
    backend: str,
    partitions: int,
    idle_minutes: float,
    concurrency: int,
    flags: list[str],
    keep_logs: Path | None = None,
) -> IdleReport:
    with local_cluster(backend, up_flags=flags) as directory:
        started = time.monotonic()
        asyncio.run(fill(directory, partitions, concurrency=concurrency))
        filled = time.monotonic() - started
        changes_filling = leadership_changes(directory)
        won_before = terms_won(directory)
        pids = processes(directory)
        load_start = os.getloadavg()[0]
        before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        idle_started = time.monotonic()
        end = idle_started + idle_minutes * 60
        while (left := end - time.monotonic()) > 0:
            time.sleep(min(10.0, left))
        idle = time.monotonic() - idle_started
        cpu = {name: (cpu_seconds(pid) - before[name]) / idle for name, pid in pids.items()}
        if keep_logs is not None:
            shutil.copytree(directory / "logs", keep_logs / backend, dirs_exist_ok=True)
        return IdleReport(
            filled,
            changes_filling,
            terms_won(directory) - won_before,
            idle,
            cpu,
            (load_start, os.getloadavg()[0]),
            why_terms_ended(directory),
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["raft", "etcd", "both"], default="both")
    parser.add_argument("--partitions", type=int, default=100_000)
    parser.add_argument("--idle-minutes", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY)
    parser.add_argument(
        "--keep-logs", type=Path, help="copy the replicas' and SPUs' logs here (per backend)"
    )
    args, flags = parser.parse_known_args()
    print(f"machine: {machine()}; load average at start {os.getloadavg()[0]:.1f}")
    for backend in ["raft", "etcd"] if args.backend == "both" else [args.backend]:
        report = measure(
            backend, args.partitions, args.idle_minutes, args.concurrency, flags, args.keep_logs
        )
        print(
            f"[{backend}, {' '.join(flags) or 'default timings'}] 3 SC replicas, 3 SPUs, "
            f"{args.partitions} partitions x 2 replicas, {args.concurrency} creates at once"
        )
        print(
            f"  filled (every partition Online) in {report.filled:.1f} s, "
            f"{report.changes_filling} leadership changes while filling"
        )
        print(
            f"  idle {report.idle / 60:.1f} min: {report.changes_idle} leadership changes; "
            f"load average {report.load[0]:.1f} -> {report.load[1]:.1f}"
        )
        for reason, count in report.ended.most_common():
            print(f"    {count:3d} terms ended: {reason}")
        for name, share in sorted(report.cpu.items()):
            print(f"    {name:10s} {share * 100:5.1f}% of one core while idle")


if __name__ == "__main__":
    main()
