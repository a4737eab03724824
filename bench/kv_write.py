"""KV write throughput and watch-to-cache latency, 10k partition objects, etcd and Raft.

    .venv/bin/python -m bench.kv_write [--backend raft|etcd|both] [--objects 10000]
        [--batch 0 [N ...]] [--batch-in-flight 4] [--etcd-client aetcd|etcd3|both]
        [--rounds 1] [--distinct-values] [--no-heap-freezer]
        [--etcd3-from COMMIT|DIR]

Raft: three real nodes; the writer and a standby (whose cache is measured) run
in this process, the third node in its own. etcd: one real etcd on loopback,
one client writing and another feeding the standby's cache. Each write is timed
from the call to the object appearing in the standby's cache (a dispatcher on
its own KV view), in two phases: a window of 64 writes in flight (throughput),
then one write at a time (latency at low load). CPU per write is this process's
CPU time (writer and standby together) over the writes of a phase.

The values are partitions of one topic as its controller writes them: 3 replica
layouts, so a cache that keeps the values it decoded (ha_sc.model.codec.DecodedValues)
meets each again; ``--distinct-values`` gives every object a value of its own.
The process keeps its garbage collections short as an SC replica does
(ha_sc/heap.py; ``--no-heap-freezer`` to leave the collector alone): the two nodes
and the cache hold several copies of the store.

``--batch N`` (N > 0) makes each write of the first phase a batch write of N
creates (``KvStore.write_batch``), ``--batch-in-flight`` of them in flight (4: past
that, on two loaded cores, Raft commits no more objects per second and the wait grows
past the resend time), and skips the one-at-a-time phase; 0 is one create per write.
Several sizes (``--batch 0 100``) run side by side, each on a
fresh store, ``--rounds`` times in turn, and the medians are compared at the end.

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
from itertools import islice
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
from ha_sc.heap import keep_collections_short
from ha_sc.kv.api import CreateOp, KvError, KvStore
from ha_sc.model import Kind, OwnerRef, PartitionSpec, PartitionStatus, encode_value
from ha_sc.store import GlobalStore, start_dispatchers
from ha_sc.tasks import Supervisor


def partition_value(topic: str, index: int, *, distinct: bool = False) -> bytes:
    """A partition of ``topic`` as its topic's controller creates it: replicas on 3
    SPUs in turn, so a topic's partitions take 3 values. ``distinct``: a value of its
    own (its status gives its index as its size), which no cache can have seen."""
    spus = [5001 + index % 3, 5001 + (index + 1) % 3]
    return encode_value(
        PartitionSpec(leader=spus[0], replicas=spus),
        PartitionStatus(size=index) if distinct else PartitionStatus(),
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


IN_FLIGHT = 64
"""Single writes outstanding in the first phase."""
BATCH_IN_FLIGHT = 4
"""Batch writes outstanding in the first phase (``--batch-in-flight``)."""

FIGURES = (
    Metric("throughput", "window: writes acknowledged", "objects/s"),
    Metric("cached_rate", "window: all in the standby's cache", "objects/s"),
    Metric("window_cache_p50", "window: call -> standby cache, median", "ms"),
    Metric("window_cache_p99", "window: call -> standby cache, p99", "ms"),
    Metric("window_cpu", "window: CPU per object", "ms"),
    Metric("single_ack_p50", "one at a time: acknowledged, median", "ms"),
    Metric("single_ack_p99", "one at a time: acknowledged, p99", "ms"),
    Metric("single_cache_p50", "one at a time: call -> standby cache, median", "ms"),
    Metric("single_cache_p99", "one at a time: call -> standby cache, p99", "ms"),
    Metric("single_cpu", "one at a time: CPU per write", "ms"),
)


def _ms(values: list[float], q: float) -> float:
    return (statistics.median(values) if q == 50 else percentile(values, q)) * 1000


async def measure(
    writer: KvStore,
    standby: KvStore,
    objects: int,
    label: str,
    batch: int = 0,
    batch_in_flight: int = BATCH_IN_FLIGHT,
    *,
    distinct: bool = False,
    heap_freezer: bool = True,
) -> dict[str, float]:
    cache = GlobalStore()
    supervisor = Supervisor()
    if heap_freezer:  # as an SC replica runs it (ha_sc/sc/replica.py)
        supervisor.start("heap-freezer", keep_collections_short())
    start_dispatchers(cache, standby, supervisor)
    clock = CacheClock(cache)
    supervisor.start("cache-clock", clock.run())
    await cache.wait_for_revision(0)
    try:
        in_flight = batch_in_flight if batch else IN_FLIGHT
        figures = await window_phase(
            writer, clock, objects, label, batch, in_flight, distinct=distinct
        )
        if not batch:
            figures.update(await single_phase(writer, clock, label))
        await same_contents(writer, standby, label)
        return figures
    finally:
        await supervisor.stop()


async def window_phase(
    writer: KvStore,
    clock: CacheClock,
    objects: int,
    label: str,
    batch: int,
    in_flight: int,
    *,
    distinct: bool = False,
) -> dict[str, float]:
    """Throughput with ``in_flight`` writes (of one create, or of a batch of ``batch``)
    outstanding."""
    submitted: dict[str, float] = {}
    keys = [f"bench-{n}" for n in range(objects)]
    values = {key: partition_value("bench", n, distinct=distinct) for n, key in enumerate(keys)}
    queue = iter(keys)

    async def write() -> None:
        while chunk := list(islice(queue, max(batch, 1))):
            sent = time.perf_counter()
            submitted.update((key, sent) for key in chunk)
            if not batch:
                await writer.create(Kind.PARTITION.value, chunk[0], values[chunk[0]])
                continue
            ops = [CreateOp(Kind.PARTITION.value, key, values[key]) for key in chunk]
            refused = [o for o in await writer.write_batch(ops) if isinstance(o, KvError)]
            if refused:
                raise SystemExit(f"[{label}] a batch write was refused: {refused[0]}")

    start = time.perf_counter()
    cpu_start = time.process_time()
    await asyncio.gather(*(write() for _ in range(in_flight)))
    acked_all = time.perf_counter()
    for key in keys:
        await clock.wait_for(key)
    cached_all = time.perf_counter()
    window_cpu = time.process_time() - cpu_start
    what = f"batches of {batch}" if batch else "single writes"
    print(f"[{label}] {objects} partition creates, {what}, {in_flight} in flight:")
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
    print(f"  CPU per object (writer and standby): {window_cpu / objects * 1000:.2f} ms")
    return {
        "throughput": objects / (acked_all - start),
        "cached_rate": objects / (cached_all - start),
        "window_cache_p50": _ms(window_latency, 50),
        "window_cache_p99": _ms(window_latency, 99),
        "window_cpu": window_cpu / objects * 1000,
    }


async def single_phase(writer: KvStore, clock: CacheClock, label: str) -> dict[str, float]:
    """Latency of 1000 creates, one at a time."""
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
    return {
        "single_ack_p50": _ms(ack_latency, 50),
        "single_ack_p99": _ms(ack_latency, 99),
        "single_cache_p50": _ms(cache_latency, 50),
        "single_cache_p99": _ms(cache_latency, 99),
        "single_cpu": single_cpu * 1000,
    }


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


async def etcd_child(
    client: str,
    endpoint: str,
    root: str,
    objects: int,
    batch: int,
    in_flight: int,
    *,
    distinct: bool = False,
    heap_freezer: bool = True,
) -> None:
    """One client's run against a running etcd (a child of ``etcd_side_by_side``)."""
    print(f"{client}: protobuf implementation {protobuf_implementation()}")
    writer, standby = open_etcd_kv(client, endpoint, root), open_etcd_kv(client, endpoint, root)
    try:
        report(await measure(writer, standby, objects, client, batch, in_flight, distinct=distinct))
    finally:
        await writer.close()
        await standby.close()


Results = dict[str, list[dict[str, float]]]


def etcd_side_by_side(data_dir: Path, args: argparse.Namespace) -> Results:
    """Each client (and batch size) in its own process against one etcd, alternating,
    ``rounds`` times; the figures by client (and batch size)."""
    from tests.etcd_server import EtcdServer

    clients, rounds, objects = chosen_clients(args), args.rounds, args.objects
    server = EtcdServer(data_dir / "etcd")
    server.start()
    results: Results = {}
    try:
        with client_trees(clients, args.etcd3_from) as trees:
            for n in range(rounds):
                for client in clients:
                    for batch in args.batch:
                        if batch and client != "aetcd":
                            continue  # the etcd3 client's tree has no batch writes
                        print(f"[etcd, {client} client, {_what(batch)}, round {n + 1}]", flush=True)
                        child = ["--etcd-endpoint", server.endpoint, "--objects", str(objects)]
                        child += ["--root", f"/bench-{client}-{batch}-{n}/"]
                        if batch:
                            child += ["--batch", str(batch)]
                            child += ["--batch-in-flight", str(args.batch_in_flight)]
                        if args.distinct_values:
                            child += ["--distinct-values"]
                        if args.no_heap_freezer:
                            child += ["--no-heap-freezer"]
                        figures = run_child(trees[client], client, "bench.kv_write", child)
                        label = client if args.batch == [0] else f"etcd {client}, {_what(batch)}"
                        results.setdefault(label, []).append(figures)
    finally:
        server.stop()
    if args.batch == [0]:
        compare(results, FIGURES)
    return results


async def raft_rounds(args: argparse.Namespace) -> Results:
    """Each batch size on a fresh three-node group, in turn, ``rounds`` times."""
    results: Results = {}
    for n in range(args.rounds):
        for batch in args.batch:
            label = f"raft, {_what(batch)}"
            print(f"[{label}, round {n + 1}]", flush=True)
            with tempfile.TemporaryDirectory(prefix="bench-raft-") as tmp:
                async with raft_backend(Path(tmp)) as (writer, standby):
                    figures = await measure(
                        writer,
                        standby,
                        args.objects,
                        "raft",
                        batch,
                        args.batch_in_flight,
                        distinct=args.distinct_values,
                        heap_freezer=not args.no_heap_freezer,
                    )
            results.setdefault(label, []).append(figures)
    return results


def side_by_side(results: Results) -> None:
    """Each figure's median over the rounds, per backend and batch size; the write
    rate also as a ratio to the first column of its backend."""
    labels = list(results)
    print(f"\nmedians over {min(len(r) for r in results.values())} round(s):")
    print(f"  {'figure':<50}" + "".join(f" {label:>24}" for label in labels))
    for metric in FIGURES:
        cells = []
        for label in labels:
            values = [r[metric.key] for r in results[label] if metric.key in r]
            cells.append(_figure(statistics.median(values)) if values else "-")
        name = f"{metric.label} ({metric.unit})"
        print(f"  {name:<50}" + "".join(f" {cell:>24}" for cell in cells))
    base: dict[str, float] = {}
    ratios = []
    for label in labels:
        rate = statistics.median(r["throughput"] for r in results[label])
        backend = label.split(",")[0]
        base.setdefault(backend, rate)
        ratios.append(f"{rate / base[backend]:.1f}x")
    name = "write rate / the backend's first column"
    print(f"  {name:<50}" + "".join(f" {ratio:>24}" for ratio in ratios))


def _what(batch: int) -> str:
    return f"batch {batch}" if batch else "single writes"


def _figure(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.2f}"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["raft", "etcd", "both"], default="both")
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument(
        "--batch",
        type=int,
        nargs="+",
        default=[0],
        metavar="N",
        help="creates per batch write (0: one create per write); several run side by side",
    )
    parser.add_argument(
        "--batch-in-flight",
        type=int,
        default=BATCH_IN_FLIGHT,
        metavar="N",
        help="batch writes outstanding at once (default %(default)s)",
    )
    parser.add_argument(
        "--distinct-values",
        action="store_true",
        help="every object a value of its own (default: a topic's 3 replica layouts, as"
        " its controller writes them)",
    )
    parser.add_argument(
        "--no-heap-freezer",
        action="store_true",
        help="leave CPython's collector as it is (an SC replica freezes its heap: ha_sc/heap.py)",
    )
    add_client_arguments(parser, rounds="runs per etcd client (and per batch size)")
    parser.add_argument("--root", default="/bench/", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if any(batch < 0 for batch in args.batch):
        parser.error("--batch takes 0 (single writes) or a positive batch size")
    if args.child_client:
        await etcd_child(
            args.child_client,
            args.etcd_endpoint,
            args.root,
            args.objects,
            args.batch[0],
            args.batch_in_flight,
            distinct=args.distinct_values,
            heap_freezer=not args.no_heap_freezer,
        )
        return
    print(f"machine: {machine()}")
    backends = ["raft", "etcd"] if args.backend == "both" else [args.backend]
    results: Results = {}
    for backend in backends:
        if backend == "etcd":
            with tempfile.TemporaryDirectory(prefix="bench-etcd-") as tmp:
                results.update(etcd_side_by_side(Path(tmp), args))
            continue
        results.update(await raft_rounds(args))
    if args.batch != [0] or (args.rounds > 1 and "raft" in backends):
        side_by_side(results)


if __name__ == "__main__":
    asyncio.run(main())
