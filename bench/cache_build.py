"""Cache build time and memory for 100k partition objects.

    .venv/bin/python -m bench.cache_build [--objects 100000] [--backend memory|raft|etcd]
        [--distinct-values]
        [--etcd-client aetcd|etcd3|both] [--rounds 1] [--etcd3-from COMMIT|DIR]

Loads the objects into the KV first, then times a fresh replica's partitions
dispatcher from start to its first full sync (list, decode, index) and reports
the resident memory the cache added. ``memory`` isolates the cache's own cost;
``raft`` (one local node) and ``etcd`` (a real server) include the listing. On
etcd the objects are loaded once, and each client (``--etcd-client``: aetcd by
default, or etcd3, or both) builds its cache from them in a process of its own
(bench/etcd_clients.py).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import tempfile
import time
from pathlib import Path

from bench.common import fill, machine, rss_mib
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
from bench.kv_write import partition_value
from ha_sc.kv.api import KvStore
from ha_sc.kv.memory import MemoryKv
from ha_sc.kv.raft import RaftKv
from ha_sc.model import Kind
from ha_sc.store import Dispatcher, GlobalStore
from ha_sc.tasks import Supervisor
from tests.net import free_addresses

ETCD_ROOT = "/bench/"
FIGURES = (
    Metric("rate", "list + decode + index", "objects/s"),
    Metric("seconds", "cache built in", "s"),
    Metric("memory", "memory the cache adds", "MiB"),
)


async def build(kv: KvStore, objects: int) -> dict[str, float]:
    gc.collect()
    before = rss_mib()
    cache = GlobalStore()
    supervisor = Supervisor()
    dispatcher = Dispatcher(kv, cache.local_store(Kind.PARTITION))
    start = time.perf_counter()
    dispatcher.start(supervisor)
    await dispatcher.ready.wait()
    elapsed = time.perf_counter() - start
    gc.collect()
    after = rss_mib()
    assert len(cache.partitions) == objects, len(cache.partitions)
    print(
        f"  cache built: {objects:,} partitions in {elapsed:.2f} s "
        f"({objects / elapsed:,.0f} objects/s)"
    )
    print(
        f"  memory added by the cache: {after - before:.0f} MiB "
        f"({(after - before) * 2**20 / objects:.0f} bytes/object); process RSS {after:.0f} MiB"
    )
    await supervisor.stop()
    return {"rate": objects / elapsed, "seconds": elapsed, "memory": after - before}


def partition_items(objects: int, *, distinct: bool = False) -> list[tuple[str, bytes]]:
    """Topics of 1000 partitions, as their controllers write them (3 replica layouts a
    topic); ``distinct``: every value of its own."""
    return [
        (f"topic{n // 1000}-{n % 1000}", partition_value(f"topic{n // 1000}", n, distinct=distinct))
        for n in range(objects)
    ]


async def etcd_child(client: str, endpoint: str, objects: int) -> None:
    """One client's cache build from objects already in etcd (a child of ``etcd_side_by_side``)."""
    print(f"{client}: protobuf implementation {protobuf_implementation()}")
    kv = open_etcd_kv(client, endpoint, ETCD_ROOT)
    try:
        report(await build(kv, objects))
    finally:
        await kv.close()


async def etcd_side_by_side(data_dir: Path, args: argparse.Namespace) -> None:
    """Load the objects once, then each client builds a cache in its own process, alternating."""
    from ha_sc.kv.etcd import EtcdKv
    from tests.etcd_server import EtcdServer

    clients, rounds, objects = chosen_clients(args), args.rounds, args.objects
    server = EtcdServer(data_dir / "etcd")
    server.start()
    results: dict[str, list[dict[str, float]]] = {client: [] for client in clients}
    try:
        kv = EtcdKv([server.endpoint], root=ETCD_ROOT)
        start = time.perf_counter()
        await fill(kv, Kind.PARTITION.value, partition_items(objects), window=256)
        await kv.close()
        print(f"[etcd] loaded {objects:,} partitions in {time.perf_counter() - start:.1f} s")
        with client_trees(clients, args.etcd3_from) as trees:
            for n in range(rounds):
                for client in clients:
                    print(f"[etcd, {client} client, round {n + 1} of {rounds}]", flush=True)
                    child_args = ["--etcd-endpoint", server.endpoint, "--objects", str(objects)]
                    child = asyncio.to_thread(
                        run_child, trees[client], client, "bench.cache_build", child_args
                    )
                    results[client].append(await child)
    finally:
        server.stop()
    compare(results, FIGURES)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--backend", choices=["memory", "raft", "etcd"], default="memory")
    parser.add_argument(
        "--distinct-values",
        action="store_true",
        help="every partition a value of its own (memory and raft; default: 3 layouts a topic)",
    )
    add_client_arguments(parser, rounds="builds per etcd client")
    args = parser.parse_args()
    if args.child_client:
        await etcd_child(args.child_client, args.etcd_endpoint, args.objects)
        return
    print(f"machine: {machine()}")
    if args.backend == "etcd":
        with tempfile.TemporaryDirectory(prefix="bench-cache-") as tmp:
            await etcd_side_by_side(Path(tmp), args)
        return
    items = partition_items(args.objects, distinct=args.distinct_values)
    with tempfile.TemporaryDirectory(prefix="bench-cache-") as tmp:
        kv: KvStore
        if args.backend == "memory":
            kv = MemoryKv()
        else:
            node = RaftKv(free_addresses(1)[0], [], Path(tmp) / "raft")
            await node.wait_ready()
            kv = node
        try:
            start = time.perf_counter()
            await fill(kv, Kind.PARTITION.value, items, window=256)
            print(
                f"[{args.backend}] loaded {args.objects:,} partitions into the KV in "
                f"{time.perf_counter() - start:.1f} s"
            )
            del items
            await build(kv, args.objects)
        finally:
            await kv.close()


if __name__ == "__main__":
    asyncio.run(main())
