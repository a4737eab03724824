"""Topic create -> every partition Online, through the public API of a local cluster.

    .venv/bin/python -m bench.topic_online [--backend raft|etcd|both] [--trials 30]
        [--partitions 3] [--replication 2]

Each trial creates a topic (the API call returns once the topic is provisioned), then
polls the partitions until every one is Online with a leader; the figure is the time
from the call to that. The topics are deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from bench.common import machine, summary
from bench.local_cluster import local_cluster, public_endpoints
from ha_sc.client import AdminClient
from ha_sc.model import PartitionResolution, TopicReplicas, TopicSpec


async def trial(
    client: AdminClient, name: str, partitions: int, replication: int
) -> tuple[float, float]:
    spec = TopicSpec(replicas=TopicReplicas.new_computed(partitions, replication))
    start = time.perf_counter()
    await client.create_topic(name, spec, wait=30)
    provisioned = time.perf_counter() - start
    deadline = start + 30
    while True:
        listed = await client.list_partitions(name)
        online = [p for p in listed if p.status.resolution is PartitionResolution.ONLINE]
        if len(listed) == partitions and len(online) == partitions:
            return provisioned, time.perf_counter() - start
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{name}: {len(online)} of {partitions} partitions Online")
        await asyncio.sleep(0.002)


async def run(backend: str, trials: int, partitions: int, replication: int) -> None:
    with local_cluster(backend) as directory:
        async with AdminClient(public_endpoints(directory)) as client:
            await trial(client, "warm-up", partitions, replication)
            samples = [
                await trial(client, f"bench-{n}", partitions, replication) for n in range(trials)
            ]
            for n in range(trials):
                await client.delete_topic(f"bench-{n}")
    print(f"[{backend}] 3 SC replicas, 3 SPUs, {trials} topics of {partitions} x {replication}")
    print(f"  create -> provisioned (API returns):  {summary([s[0] for s in samples])}")
    print(f"  create -> every partition Online:     {summary([s[1] for s in samples])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["raft", "etcd", "both"], default="both")
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--replication", type=int, default=2)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    for backend in ["raft", "etcd"] if args.backend == "both" else [args.backend]:
        asyncio.run(run(backend, args.trials, args.partitions, args.replication))


if __name__ == "__main__":
    main()
