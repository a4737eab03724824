"""KV write throughput and watch-to-cache latency, 10k partition objects, etcd and Raft.

    .venv/bin/python -m bench.kv_write [--backend raft|etcd|both] [--objects 10000]

Raft: three real nodes; the writer and a standby (whose cache is measured) run
in this process, the third node in its own. etcd: one real etcd on loopback,
one client writing and another feeding the standby's cache. Each write is timed
from the call to the object appearing in the standby's cache (a dispatcher on
its own KV view), in two phases: a window of 64 writes in flight (throughput),
then one write at a time (latency at low load).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from bench.common import machine, raft_group, summary
from ha_sc.kv.api import KvStore
from ha_sc.model import Kind, OwnerRef, PartitionSpec, PartitionStatus, encode_value
from ha_sc.store import GlobalStore, start_dispatchers
from ha_sc.tasks import Supervisor


def partition_value(topic: str, index: int) -> bytes:
    spus = [5001 + index % 3, 5001 + (index + 1) % 3]
    return encode_value(
        PartitionSpec(leader=spus[0], replicas=spus),
        PartitionStatus(),
        OwnerRef(kind=Kind.TOPIC.value, key=topic),
    )


class CacheClock:
    """Records when each partition key first appears in a cache."""

    def __init__(self, cache: GlobalStore) -> None:
        self.cache = cache
        self.seen: dict[str, float] = {}
        self.arrived = asyncio.Event()

    async def run(self) -> None:
        listener = self.cache.partitions.listen()
        while True:
            await listener.wait_for_change()
            now = time.perf_counter()
            for obj in listener.take_changes().updates:
                self.seen.setdefault(obj.meta.key, now)
            self.arrived.set()

    async def wait_for(self, key: str) -> float:
        while key not in self.seen:
            self.arrived.clear()
            await self.arrived.wait()
        return self.seen[key]


async def measure(writer: KvStore, standby: KvStore, objects: int, label: str) -> None:
    cache = GlobalStore()
    supervisor = Supervisor()
    start_dispatchers(cache, standby, supervisor)
    clock = CacheClock(cache)
    supervisor.start("cache-clock", clock.run())
    await cache.wait_for_revision(0)
    try:
        # phase 1: throughput with 64 writes in flight
        submitted: dict[str, float] = {}
        acked: dict[str, float] = {}
        keys = [f"bench-{n}" for n in range(objects)]
        queue = iter(keys)

        async def write() -> None:
            for key in queue:
                submitted[key] = time.perf_counter()
                await writer.create(Kind.PARTITION.value, key, partition_value("bench", 0))
                acked[key] = time.perf_counter()

        start = time.perf_counter()
        await asyncio.gather(*(write() for _ in range(64)))
        acked_all = time.perf_counter()
        await clock.wait_for(keys[-1])
        for key in keys:
            await clock.wait_for(key)
        cached_all = time.perf_counter()
        print(f"[{label}] {objects} partition writes, 64 in flight:")
        print(
            f"  write throughput: {objects / (acked_all - start):,.0f} objects/s "
            f"(all acknowledged in {acked_all - start:.2f} s)"
        )
        print(
            f"  all in the standby's cache after {cached_all - start:.2f} s "
            f"({objects / (cached_all - start):,.0f} objects/s)"
        )
        print(
            "  write call -> standby cache: "
            + summary([clock.seen[k] - submitted[k] for k in keys])
        )
        # phase 2: one at a time
        ack_latency: list[float] = []
        cache_latency: list[float] = []
        for n in range(1000):
            key = f"single-{n}"
            sent = time.perf_counter()
            await writer.create(Kind.PARTITION.value, key, partition_value("bench", n))
            ack_latency.append(time.perf_counter() - sent)
            cache_latency.append(await clock.wait_for(key) - sent)
        print(f"[{label}] one write at a time (1000 writes):")
        print("  write acknowledged:          " + summary(ack_latency))
        print("  write call -> standby cache: " + summary(cache_latency))
        await same_contents(writer, standby, label)
    finally:
        await supervisor.stop()


async def same_contents(writer: KvStore, standby: KvStore, label: str) -> None:
    """Both views hold the same objects at the same revisions (replicas did not diverge)."""
    async with asyncio.timeout(10):
        while True:
            mine, theirs = await writer.list("partitions"), await standby.list("partitions")
            if mine.revision == theirs.revision:
                break
            await asyncio.sleep(0.05)
    same = sorted(mine.entries, key=lambda e: e.key) == sorted(theirs.entries, key=lambda e: e.key)
    print(
        f"[{label}] writer and standby hold identical contents at revision {mine.revision}: {same}"
    )
    if not same:
        raise SystemExit("replicas diverged")


@asynccontextmanager
async def raft_backend(data_dir: Path) -> AsyncIterator[tuple[KvStore, KvStore]]:
    async with raft_group(data_dir, in_process=2, peers=1) as nodes:
        leader = next((n for n in nodes if n.is_raft_leader()), nodes[0])
        standby = nodes[1] if leader is nodes[0] else nodes[0]
        yield leader, standby


@asynccontextmanager
async def etcd_backend(data_dir: Path) -> AsyncIterator[tuple[KvStore, KvStore]]:
    from ha_sc.kv.etcd import EtcdKv
    from tests.etcd_server import EtcdServer

    server = EtcdServer(data_dir / "etcd")
    server.start()
    writer = EtcdKv([server.endpoint], root="/bench/")
    standby = EtcdKv([server.endpoint], root="/bench/")
    try:
        yield writer, standby
    finally:
        await writer.close()
        await standby.close()
        server.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["raft", "etcd", "both"], default="both")
    parser.add_argument("--objects", type=int, default=10_000)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    backends = ["raft", "etcd"] if args.backend == "both" else [args.backend]
    for backend in backends:
        with tempfile.TemporaryDirectory(prefix=f"bench-{backend}-") as tmp:
            opener = raft_backend if backend == "raft" else etcd_backend
            async with opener(Path(tmp)) as (writer, standby):
                await measure(writer, standby, args.objects, backend)


if __name__ == "__main__":
    asyncio.run(main())
