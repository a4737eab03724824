"""KV write throughput and watch-to-cache latency, 10k partition objects, etcd and Raft.

    .venv/bin/python -m bench.kv_write [--backend raft|etcd|both] [--objects 10000]
        [--etcd-client aetcd|etcd3|both] [--rounds 1] [--etcd3-from COMMIT|DIR]

Raft: three real nodes; the writer and a standby (whose cache is measured) run
in this process, the third node in its own. etcd: one real etcd on loopback,
one client writing and another feeding the standby's cache. Each write is timed
from the call to the object appearing in the standby's cache (a dispatcher on
its own KV view), in two phases: a window of 64 writes in flight (throughput),
then one write at a time (latency at low load). CPU per write is this process's
CPU time (writer and standby together) over the writes of a phase.

On etcd, ``--etcd-client both`` runs the etcd3 and the aetcd client
against one etcd, each in its own process (see bench/etcd_clients.py).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from bench.common import machine, percentile, raft_group, summary
from bench.etcd_clients import (
    Metric,
    add_client_arguments,
    chosen_clients,
    client_trees,
    compare,
    open_etcd_kv,
    protobuf_implementation,
    report,
    run_child,
)
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


FIGURES = (
    Metric("throughput", "64 in flight: writes acknowledged", "objects/s"),
    Metric("cached_rate", "64 in flight: all in the standby's cache", "objects/s"),
    Metric("window_cache_p50", "64 in flight: call -> standby cache, median", "ms"),
    Metric("window_cache_p99", "64 in flight: call -> standby cache, p99", "ms"),
    Metric("window_cpu", "64 in flight: CPU per write", "ms"),
    Metric("single_ack_p50", "one at a time: acknowledged, median", "ms"),
    Metric("single_ack_p99", "one at a time: acknowledged, p99", "ms"),
    Metric("single_cache_p50", "one at a time: call -> standby cache, median", "ms"),
    Metric("single_cache_p99", "one at a time: call -> standby cache, p99", "ms"),
    Metric("single_cpu", "one at a time: CPU per write", "ms"),
)


def _ms(values: list[float], q: float) -> float:
    return (statistics.median(values) if q == 50 else percentile(values, q)) * 1000


async def measure(writer: KvStore, standby: KvStore, objects: int, label: str) -> dict[str, float]:
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
        cpu_start = time.process_time()
        await asyncio.gather(*(write() for _ in range(64)))
        acked_all = time.perf_counter()
        await clock.wait_for(keys[-1])
        for key in keys:
            await clock.wait_for(key)
        cached_all = time.perf_counter()
        window_cpu = time.process_time() - cpu_start
        print(f"[{label}] {objects} partition writes, 64 in flight:")
        print(
            f"  write throughput: {objects / (acked_all - start):,.0f} objects/s "
            f"(all acknowledged in {acked_all - start:.2f} s)"
        )
        print(
            f"  all in the standby's cache after {cached_all - start:.2f} s "
            f"({objects / (cached_all - start):,.0f} objects/s)"
        )
        window_latency = [clock.seen[k] - submitted[k] for k in keys]
        print("  write call -> standby cache: " + summary(window_latency))
        print(f"  CPU per write (writer and standby): {window_cpu / objects * 1000:.2f} ms")
        # phase 2: one at a time
        ack_latency: list[float] = []
        cache_latency: list[float] = []
        single_cpu_start = time.process_time()
        for n in range(1000):
            key = f"single-{n}"
            sent = time.perf_counter()
            await writer.create(Kind.PARTITION.value, key, partition_value("bench", n))
            ack_latency.append(time.perf_counter() - sent)
            cache_latency.append(await clock.wait_for(key) - sent)
        print(f"[{label}] one write at a time (1000 writes):")
        print("  write acknowledged:          " + summary(ack_latency))
        single_cpu = (time.process_time() - single_cpu_start) / 1000
        print("  write call -> standby cache: " + summary(cache_latency))
        print(f"  CPU per write (writer and standby): {single_cpu * 1000:.2f} ms")
        await same_contents(writer, standby, label)
        return {
            "throughput": objects / (acked_all - start),
            "cached_rate": objects / (cached_all - start),
            "window_cache_p50": _ms(window_latency, 50),
            "window_cache_p99": _ms(window_latency, 99),
            "window_cpu": window_cpu / objects * 1000,
            "single_ack_p50": _ms(ack_latency, 50),
            "single_ack_p99": _ms(ack_latency, 99),
            "single_cache_p50": _ms(cache_latency, 50),
            "single_cache_p99": _ms(cache_latency, 99),
            "single_cpu": single_cpu * 1000,
        }
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


async def etcd_child(client: str, endpoint: str, root: str, objects: int) -> None:
    """One client's run against a running etcd (a child of ``etcd_side_by_side``)."""
    print(f"{client}: protobuf implementation {protobuf_implementation()}")
    writer, standby = open_etcd_kv(client, endpoint, root), open_etcd_kv(client, endpoint, root)
    try:
        report(await measure(writer, standby, objects, client))
    finally:
        await writer.close()
        await standby.close()


def etcd_side_by_side(data_dir: Path, args: argparse.Namespace) -> None:
    """Each client in its own process against one etcd, alternating, ``rounds`` times."""
    from tests.etcd_server import EtcdServer

    clients, rounds, objects = chosen_clients(args), args.rounds, args.objects
    server = EtcdServer(data_dir / "etcd")
    server.start()
    results: dict[str, list[dict[str, float]]] = {client: [] for client in clients}
    try:
        with client_trees(clients, args.etcd3_from) as trees:
            _alternate(trees, clients, rounds, server.endpoint, objects, results)
    finally:
        server.stop()
    compare(results, FIGURES)


def _alternate(
    trees: dict[str, Path],
    clients: list[str],
    rounds: int,
    endpoint: str,
    objects: int,
    results: dict[str, list[dict[str, float]]],
) -> None:
    for n in range(rounds):
        for client in clients:
            print(f"[etcd, {client} client, round {n + 1} of {rounds}]", flush=True)
            args = ["--etcd-endpoint", endpoint, "--root", f"/bench-{client}-{n}/"]
            args += ["--objects", str(objects)]
            results[client].append(run_child(trees[client], client, "bench.kv_write", args))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["raft", "etcd", "both"], default="both")
    parser.add_argument("--objects", type=int, default=10_000)
    add_client_arguments(parser, rounds="runs per etcd client")
    parser.add_argument("--root", default="/bench/", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_client:
        await etcd_child(args.child_client, args.etcd_endpoint, args.root, args.objects)
        return
    print(f"machine: {machine()}")
    backends = ["raft", "etcd"] if args.backend == "both" else [args.backend]
    for backend in backends:
        with tempfile.TemporaryDirectory(prefix=f"bench-{backend}-") as tmp:
            if backend == "etcd":
                etcd_side_by_side(Path(tmp), args)
                continue
            async with raft_backend(Path(tmp)) as (writer, standby):
                await measure(writer, standby, args.objects, backend)


if __name__ == "__main__":
    asyncio.run(main())
