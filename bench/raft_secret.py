"""What the Raft group secret costs: sequential commit latency with and without it.

    .venv/bin/python -m bench.raft_secret [--writes 400] [--rounds 2]

Three Raft KV nodes on loopback in this process; the Raft leader creates ``--writes``
objects one at a time, each awaited until committed and applied. Rounds alternate
without and with a secret (pysyncobj's password: every frame encrypted and
authenticated), so load on the machine falls on both alike.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from bench.common import machine, summary
from ha_sc.kv.raft import RaftKv
from ha_sc.secret_file import new_secret
from tests.net import free_addresses


async def commit_latencies(secret: str | None, writes: int) -> list[float]:
    addresses = free_addresses(3)
    with tempfile.TemporaryDirectory() as tmp:
        nodes = [
            RaftKv(a, [b for b in addresses if b != a], Path(tmp) / f"node{i}", secret=secret)
            for i, a in enumerate(addresses)
        ]
        try:
            for node in nodes:
                await node.wait_ready()
            leader = next(node for node in nodes if node.is_raft_leader())
            latencies = []
            for n in range(writes):
                start = time.perf_counter()
                await leader.create("topics", f"t{n}", b"{}")
                latencies.append(time.perf_counter() - start)
            return latencies
        finally:
            for node in nodes:
                await node.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    print(machine())
    for round_number in range(1, args.rounds + 1):
        for label, secret in (("no secret", None), ("secret", new_secret())):
            latencies = await commit_latencies(secret, args.writes)
            print(f"round {round_number}, {label}: commit {summary(latencies)}")


if __name__ == "__main__":
    asyncio.run(main())
