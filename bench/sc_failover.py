"""SC failover as SPUs see it: SIGKILL of the SC leader until every SPU is synced by the
new leader (a full sync, or a resync since its cursor), with a store of a given size.

    .venv/bin/python -m bench.sc_failover [--backend raft|etcd|both] [--trials 20]
        [--partitions 3 10000 100000] [--lease-ttl S --renew-deadline S] [--write-batch N]

For each size, runs `ha-sc cluster up --replicas 3 --spus 3` in a temporary directory,
fills the store with topics of up to 1000 partitions x 2 replicas until it holds that
many partitions, all Online (`bench.store_fill`, several creates at once); then per
trial: kill the leader (SIGKILL, by the PID in the cluster file), read the new leader's
log for `became leader` (its cache caught up, its controllers start) and each SPU's log
for its first sync at a higher epoch, full or by cursor (log timestamps, millisecond
resolution; how many were by cursor is printed; and from the new leader's log, when it
had sent every SPU its first message), and bring the killed replica back with
`cluster up`, waiting until its cache has caught up before the next trial.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from bench.common import machine, summary
from bench.local_cluster import ha_sc, local_cluster, status
from bench.store_fill import BECAME_LEADER, fill, leadership_changes

STAMP = r"^(\S+ \S+) "
SYNCED = re.compile(STAMP + r".*(?:full sync|synced) at epoch (\d+)")
"""An SPU's ``full sync at epoch N`` or ``synced at epoch N since <cursor>`` line."""
RESYNCED = re.compile(STAMP + r".*synced at epoch (\d+) since")
ANSWERED = re.compile(
    STAMP + r".*spu (\d+) registered from \S+ (?:full sync|resync).* at epoch (\d+)"
)
"""The leader's ``spu N registered from ...: full sync ... at epoch E`` (or ``resync``) line:
it sent the SPU its first message."""


def answered_after(logs: list[Path], epoch: int) -> dict[int, float]:
    """SPU id -> when a leader of an epoch above ``epoch`` first sent it its first message."""
    answered: dict[int, float] = {}
    for log in logs:
        for line in log.read_text().splitlines():
            match = ANSWERED.match(line)
            if match and int(match.group(3)) > epoch:
                at = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
                spu = int(match.group(2))
                answered[spu] = min(at, answered.get(spu, at))
    return answered


def first_after(log: Path, pattern: re.Pattern[str], epoch: int) -> float | None:
    for line in log.read_text().splitlines():
        match = pattern.match(line)
        if match and int(match.group(2)) > epoch:
            return datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
    return None


def warm(directory: Path, timeout: float = 600) -> dict[str, object]:
    """Until a leader leads, every replica answers with no lag, and every SPU is Online."""
    deadline = time.monotonic() + timeout
    while True:
        now = status(directory)
        replicas_ok = all(r["role"] != "down" and r["lag"] == 0 for r in now["replicas"])
        spus_ok = all(s["status"] == "Online" for s in now["spus"])
        if now["leader"] is not None and replicas_ok and spus_ok:
            return now
        if time.monotonic() > deadline:
            raise TimeoutError(f"cluster not warm: {now}")
        time.sleep(0.5)


@dataclass(frozen=True)
class Takeover:
    """Wall-clock times of one fault on the SC leader and what followed it."""

    faulted: float
    """The signal was sent."""
    won: float
    """First ``became leader`` at a newer epoch in another replica's log."""
    synced: float
    """The last SPU's first sync at a newer epoch."""
    by_cursor: int = 0
    """SPUs whose first sync at the newer epoch was a resync by cursor."""
    answered: float | None = None
    """The new leader had sent the last SPU its first message (its log)."""


def signal_leader(
    directory: Path,
    signum: signal.Signals,
    timeout: float,
    *,
    afterwards: signal.Signals | None = None,
) -> Takeover:
    """Send ``signum`` to the warm cluster's SC leader and wait until another replica leads
    and every SPU had a full sync from it; ``afterwards`` (e.g. SIGCONT) is sent to the old
    leader however the wait ends."""
    now = warm(directory)
    leader = now["leader"]
    assert isinstance(leader, dict)
    logs = directory / "logs"
    spu_logs = [logs / f"spu-{s['id']}.log" for s in now["spus"]]  # type: ignore[attr-defined]
    sc_logs = [logs / f"{r['id']}.log" for r in now["replicas"] if r["id"] != leader["id"]]  # type: ignore[attr-defined]
    faulted = time.time()
    os.kill(leader["pid"], signum)
    try:
        deadline = time.monotonic() + timeout
        while True:
            won = [first_after(log, BECAME_LEADER, leader["epoch"]) for log in sc_logs]
            synced = [first_after(log, SYNCED, leader["epoch"]) for log in spu_logs]
            if any(won) and all(t is not None for t in synced):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"SPUs not on the new leader: {synced}")
            time.sleep(0.05)
    finally:
        if afterwards is not None:
            os.kill(leader["pid"], afterwards)
    resynced = [first_after(log, RESYNCED, leader["epoch"]) for log in spu_logs]
    answered = answered_after(sc_logs, leader["epoch"])
    return Takeover(
        faulted,
        min(t for t in won if t is not None),
        max(t for t in synced if t is not None),
        sum(r is not None and r == t for r, t in zip(resynced, synced, strict=True)),
        max(answered.values()) if len(answered) == len(spu_logs) else None,
    )


def trial(directory: Path, backend: str) -> tuple[float, float, int, float | None]:
    """Acting and synced (seconds after the fault), syncs by cursor, and the new leader's
    time from acting to the last SPU sent its first message (None if its log lacks one)."""
    takeover = signal_leader(directory, signal.SIGKILL, 120)
    ha_sc(directory, "cluster", "up", "--replicas", "3", "--spus", "3", "--backend", backend)
    acting = takeover.won - takeover.faulted
    answered = None if takeover.answered is None else takeover.answered - takeover.won
    print(
        f"  trial: acting {acting * 1000:.0f} ms, every SPU synced "
        f"{(takeover.synced - takeover.faulted) * 1000:.0f} ms, last SPU answered "
        + ("?" if answered is None else f"{answered * 1000:.0f} ms")
        + " after acting",
        flush=True,
    )
    return acting, takeover.synced - takeover.faulted, takeover.by_cursor, answered


def run(backend: str, trials: int, partitions: int, up_flags: list[str]) -> None:
    with local_cluster(backend, up_flags=up_flags) as directory:
        started = time.monotonic()
        asyncio.run(fill(directory, partitions))
        filled = time.monotonic() - started
        changes = leadership_changes(directory)
        samples = [trial(directory, backend) for _ in range(trials)]
    timings = " ".join(up_flags) or "default lease timings"
    print(
        f"[{backend}, {timings}] 3 SC replicas, 3 SPUs, {partitions} partitions x 2 replicas "
        f"(filled in {filled:.0f} s, {changes} leadership changes while filling), "
        f"{trials} trials"
    )
    print(
        f"  SIGKILL SC leader -> new leader acting:              {summary([s[0] for s in samples])}"
    )
    print(
        f"  SIGKILL SC leader -> every SPU synced by it:         {summary([s[1] for s in samples])}"
    )
    answered = [s[3] for s in samples if s[3] is not None]
    print(f"  new leader acting -> last SPU sent its first message: {summary(answered)}")
    print(f"  SPU syncs by cursor: {sum(s[2] for s in samples)} of {3 * len(samples)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["raft", "etcd", "both"], default="both")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--partitions", type=int, nargs="+", default=[3])
    parser.add_argument("--lease-ttl", type=float, help="cluster up --lease-ttl")
    parser.add_argument("--renew-deadline", type=float, help="cluster up --renew-deadline")
    parser.add_argument(
        "--write-batch", type=int, help="cluster up --write-window-batch (1: single writes)"
    )
    args = parser.parse_args()
    up_flags = []
    if args.lease_ttl is not None:
        up_flags += ["--lease-ttl", f"{args.lease_ttl:g}"]
    if args.renew_deadline is not None:
        up_flags += ["--renew-deadline", f"{args.renew_deadline:g}"]
    if args.write_batch is not None:
        up_flags += ["--write-window-batch", str(args.write_batch)]
    print(f"machine: {machine()}")
    for backend in ["raft", "etcd"] if args.backend == "both" else [args.backend]:
        for size in args.partitions:
            run(backend, args.trials, size, up_flags)


if __name__ == "__main__":
    main()
