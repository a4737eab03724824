"""Election failover: SIGKILL and SIGTERM of the leader, and churn while quiet.

    .venv/bin/python -m bench.election_failover [--backend raft|etcd|both]
        [--trials 25] [--quiet-seconds 300]

Three candidates, each its own OS process (tests/candidate_proc.py), on real
Raft nodes or a real etcd. A trial signals the current leader and times, on
this machine's clock, from the signal to the new leader's won event; then the
signalled candidate is started again so every trial begins with three.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import tempfile
import time
from pathlib import Path

from bench.common import machine, summary
from election.raft import DEFAULT_TIMING as RAFT_TIMING
from tests.election_group import ElectionGroup

ETCD_TTL = 2.0


def slowest(values: list[float]) -> str:
    return ", ".join(f"{v * 1000:.0f}" for v in sorted(values)[-5:]) + " ms"


async def trial(group: ElectionGroup, sig: signal.Signals) -> float:
    await group.wait_for(lambda _events: len(group.leaders()) == 1)
    name = group.leaders()[0]
    member = group.member(name)
    sent = time.time()
    member.signal(sig)
    new = await group.wait_won(after=sent, exclude=name, timeout=30)
    elapsed = float(new["ts"]) - sent
    assert member.proc is not None
    member.proc.wait(10)
    await group.restart(member)
    await asyncio.sleep(1.0)  # let the restarted process finish starting before the next trial
    return elapsed


async def run_backend(backend: str, trials: int, quiet: float, tmp: Path) -> None:
    server = None
    if backend == "etcd":
        from tests.etcd_server import EtcdServer

        server = EtcdServer(tmp / "etcd")
        server.start()
        group = ElectionGroup("etcd", tmp / "group", etcd=server.endpoint, root="/bench/")
        ttl = ETCD_TTL
    else:
        group = ElectionGroup("raft", tmp / "group")
        ttl = RAFT_TIMING.lease_ttl
    try:
        await group.start()
        await group.wait_won()
        crash = [await trial(group, signal.SIGKILL) for _ in range(trials)]
        graceful = [await trial(group, signal.SIGTERM) for _ in range(trials)]
        print(f"[{backend}] lease TTL {ttl:.1f} s, 3 candidates, {trials} trials each")
        print(f"  SIGKILL leader -> new leader won:  {summary(crash)}")
        print(f"    slowest: {slowest(crash)}")
        print(f"  SIGTERM leader -> new leader won:  {summary(graceful)}")
        print(f"    slowest: {slowest(graceful)}")
        if quiet > 0:
            await asyncio.sleep(2)
            before = len([e for e in group.events() if e["event"] == "won"])
            await asyncio.sleep(quiet)
            after = len([e for e in group.events() if e["event"] == "won"])
            print(f"  leadership changes in {quiet:.0f} s of quiet: {after - before}")
    finally:
        await group.stop()
        if server is not None:
            server.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["raft", "etcd", "both"], default="both")
    parser.add_argument("--trials", type=int, default=25)
    parser.add_argument("--quiet-seconds", type=float, default=300.0)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    for backend in ["raft", "etcd"] if args.backend == "both" else [args.backend]:
        with tempfile.TemporaryDirectory(prefix=f"bench-election-{backend}-") as tmp:
            await run_backend(backend, args.trials, args.quiet_seconds, Path(tmp))


if __name__ == "__main__":
    asyncio.run(main())
