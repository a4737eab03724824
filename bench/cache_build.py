"""Cache build time and memory for 100k partition objects.

    .venv/bin/python -m bench.cache_build [--objects 100000] [--backend memory|raft|etcd]

Loads the objects into the KV first, then times a fresh replica's partitions
dispatcher from start to its first full sync (list, decode, index) and reports
the resident memory the cache added. ``memory`` isolates the cache's own cost;
``raft`` (one local node) and ``etcd`` (a real server) include the listing.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import tempfile
import time
from pathlib import Path

from bench.common import fill, machine, rss_mib
from bench.kv_write import partition_value
from ha_sc.kv.api import KvStore
from ha_sc.kv.memory import MemoryKv
from ha_sc.kv.raft import RaftKv
from ha_sc.model import Kind
from ha_sc.store import Dispatcher, GlobalStore
from ha_sc.tasks import Supervisor
from tests.net import free_addresses


async def build(kv: KvStore, objects: int) -> None:
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


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--backend", choices=["memory", "raft", "etcd"], default="memory")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    items = [
        (f"topic{n // 1000}-{n % 1000}", partition_value(f"topic{n // 1000}", n))
        for n in range(args.objects)
    ]
    with tempfile.TemporaryDirectory(prefix="bench-cache-") as tmp:
        kv: KvStore
        server = None
        if args.backend == "memory":
            kv = MemoryKv()
        elif args.backend == "raft":
            node = RaftKv(free_addresses(1)[0], [], Path(tmp) / "raft")
            await node.wait_ready()
            kv = node
        else:
            from ha_sc.kv.etcd import EtcdKv
            from tests.etcd_server import EtcdServer

            server = EtcdServer(Path(tmp) / "etcd")
            server.start()
            kv = EtcdKv([server.endpoint], root="/bench/")
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
            if server is not None:
                server.stop()


if __name__ == "__main__":
    asyncio.run(main())
