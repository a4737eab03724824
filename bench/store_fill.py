"""Filling a local cluster's store through the API: topics of up to 1000 partitions x 2
replicas, several created at once, until every partition is Online.

Shared by `bench.sc_failover` and `bench.idle_cluster`.
"""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

from bench.local_cluster import public_endpoints
from ha_sc.client import AdminClient, ApiError
from ha_sc.model import PartitionResolution, TopicReplicas, TopicResolution, TopicSpec

PER_TOPIC = 1000
CREATE_ATTEMPTS = 10
CONCURRENCY = 8
"""Topic creates in flight at once: the leader provisions the topics a pass finds in
one pass, so creates one after another would wait a pass each."""
BECAME_LEADER = re.compile(r"^(\S+ \S+) .*became leader epoch=(\d+)", re.MULTILINE)


async def fill(
    directory: Path, partitions: int, *, concurrency: int = CONCURRENCY, timeout: float = 1800
) -> None:
    """Topics until the store holds ``partitions`` partitions, every one Online; up to
    ``concurrency`` creates in flight (1: one after another, each awaited)."""
    sizes = [min(PER_TOPIC, partitions - start) for start in range(0, partitions, PER_TOPIC)]
    names = [f"load-{n}" for n in range(len(sizes))]
    deadline = time.monotonic() + timeout
    async with AdminClient(public_endpoints(directory), timeout=120) as client:
        pending = iter(zip(names, sizes, strict=True))

        async def creator() -> None:
            for name, count in pending:
                await _create(client, name, count)

        async with asyncio.TaskGroup() as group:
            for n in range(max(1, concurrency)):
                group.create_task(creator(), name=f"bench-creator-{n}")
        # one topic asked about at a time, in the order created: a partition list by topic
        # is a scan of every cached partition on the replica that answers
        waiting = dict(zip(names, sizes, strict=True))
        while waiting:
            name, count = next(iter(waiting.items()))
            listed = await client.list_partitions(name)
            if sum(p.status.resolution is PartitionResolution.ONLINE for p in listed) == count:
                del waiting[name]
                continue
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(waiting)} topics not yet Online, first {name}")
            await asyncio.sleep(0.5)


async def _create(client: AdminClient, name: str, count: int) -> None:
    spec = TopicSpec(replicas=TopicReplicas.new_computed(count, 2))
    for _ in range(CREATE_ATTEMPTS):
        try:
            await client.create_topic(name, spec, wait=300)
            return
        except ApiError as failed:  # stored and provisioned later, or refused
            # 409: an attempt answered ambiguously (leadership changed) had landed
            # 429: too many requests open from this host (the client's relaunches)
            if failed.status not in (409, 429, 503) or (
                failed.status == 409 and "already exists" not in str(failed)
            ):
                raise
            print(f"  (while filling: {failed})")
            if await provisioned(client, name):
                return
            await asyncio.sleep(2)  # refused (SPUs offline) and removed: again
    raise RuntimeError(f"topic {name} not created in {CREATE_ATTEMPTS} attempts")


async def provisioned(client: AdminClient, name: str, timeout: float = 600) -> bool:
    """True once ``name`` is provisioned; False if it is gone (refused and removed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            topic = await client.describe_topic(name)
        except ApiError as failed:
            if failed.status == 404:
                return False
        else:
            if topic.status.resolution is TopicResolution.PROVISIONED:
                return True
        await asyncio.sleep(0.5)
    raise TimeoutError(f"topic {name} not provisioned within {timeout:.0f} s")


def terms_won(directory: Path) -> int:
    """Terms won so far, as the replicas' logs tell (a leader that lost its lease and won
    it back counts twice)."""
    return sum(
        len(BECAME_LEADER.findall(log.read_text())) for log in (directory / "logs").glob("sc-*.log")
    )


def leadership_changes(directory: Path) -> int:
    """Terms won after the first."""
    return max(0, terms_won(directory) - 1)
