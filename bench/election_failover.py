"""Election failover: SIGKILL and SIGTERM of the leader, and churn while quiet.

    .venv/bin/python -m bench.election_failover [--backend raft|etcd|both]
        [--trials 25] [--quiet-seconds 300] [--lessor-trials 20]

Three candidates, each its own OS process (tests/candidate_proc.py), on real
Raft nodes or a real etcd. A trial signals the current leader and times, on
this machine's clock, from the signal to the new leader's won event; then the
signalled candidate is started again so every trial begins with three.

On etcd it also measures the floor etcd's lessor sets under a crash failover
(``--lessor-trials``): a lease of the election's TTL, a key bound to it, one
keepalive, then silence; the time from the keepalive's answer to the key's deletion
seen through a watch, less the TTL, is how late etcd revoked the lease. etcd's
lessor looks for expired leases every 500 ms, so it is expected anywhere in
0-500 ms (plus the revoke's commit and the watch).
"""

from __future__ import annotations

import argparse
import asyncio
import random
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


async def lessor_lag(endpoint: str, ttl: int, key: str) -> float:
    """Seconds from a lease's last keepalive answer + ``ttl`` to its key's deletion."""
    from election.etcd_client import ElectionClient

    client = ElectionClient([endpoint], request_timeout=2.0)
    try:
        lease, granted = await client.grant(ttl)
        claim = await client.claim(key, b"lessor-floor", lease)
        assert claim.won and claim.state.key is not None
        # a random phase against the lessor's 500 ms check, as a crash has
        await asyncio.sleep(random.uniform(0, 0.5))
        await client.refresh(lease)
        kept = time.monotonic()
        revision = claim.state.revision
        while True:
            change = await client.next_change(key, revision + 1, granted + 3.0)
            if change is not None and change.key is None:
                return time.monotonic() - kept - granted
            if change is not None:
                revision = change.revision
    finally:
        await client.close()


async def lessor_floor(endpoint: str, trials: int) -> None:
    ttl = int(ETCD_TTL)
    lags = [await lessor_lag(endpoint, ttl, f"/bench/lessor/{n}") for n in range(trials)]
    print(f"  etcd lessor: lease of {ttl} s, last keepalive -> key deleted, less the TTL:")
    print(f"    {summary(lags)}, min {min(lags) * 1000:.0f} ms")


async def run_backend(
    backend: str, trials: int, quiet: float, tmp: Path, lessor_trials: int = 0
) -> None:
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
        if server is not None and lessor_trials > 0:
            await lessor_floor(server.endpoint, lessor_trials)
    finally:
        await group.stop()
        if server is not None:
            server.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["raft", "etcd", "both"], default="both")
    parser.add_argument("--trials", type=int, default=25)
    parser.add_argument("--quiet-seconds", type=float, default=300.0)
    parser.add_argument(
        "--lessor-trials",
        type=int,
        default=20,
        help="etcd: leases left to expire, to time how late etcd's lessor revokes them",
    )
    args = parser.parse_args()
    print(f"machine: {machine()}")
    for backend in ["raft", "etcd"] if args.backend == "both" else [args.backend]:
        with tempfile.TemporaryDirectory(prefix=f"bench-election-{backend}-") as tmp:
            await run_backend(
                backend, args.trials, args.quiet_seconds, Path(tmp), args.lessor_trials
            )


if __name__ == "__main__":
    asyncio.run(main())
