"""What etcd spends on the SC replicas' watches, with and without previous values
(``prev_kv``), for the same writes.

    .venv/bin/python -m bench.etcd_watch_cost [--objects 20000] [--watchers 3] [--rounds 2]

One real etcd (tests/etcd_server.py). Per round and per setting, on a fresh key root:
``--watchers`` EtcdKv watches of the partitions, then ``--objects`` creates and as many
updates as batch writes of 100, 4 in flight; the round ends once every watch has seen
every event. Printed: etcd's CPU seconds (utime + stime from /proc) and the wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from aetcd import rpc as etcdrpc

from bench.common import machine
from bench.idle_cluster import cpu_seconds
from ha_sc.kv.api import BatchOp, CreateOp, UpdateOp
from ha_sc.kv.etcd import EtcdKv, range_end

BATCH = 100
IN_FLIGHT = 4
VALUE = b"v" * 240
"""About a partition object's size."""


class PreviousValuesKv(EtcdKv):
    """EtcdKv whose watches ask etcd for each event's previous value, as they once did."""

    def watch_request(self, prefix: bytes, start_revision: int) -> Any:
        create = etcdrpc.WatchCreateRequest(
            key=prefix, range_end=range_end(prefix), start_revision=start_revision, prev_kv=True
        )
        return etcdrpc.WatchRequest(create_request=create)


async def one_round(endpoint: str, pid: int, objects: int, watchers: int, prev_kv: bool) -> float:
    root = f"/watch-cost-{int(prev_kv)}-{time.monotonic_ns()}/"
    kind = PreviousValuesKv if prev_kv else EtcdKv
    writer = EtcdKv([endpoint], root=root)
    watching = [kind([endpoint], root=root) for _ in range(watchers)]
    start = (await writer.list("partitions")).revision + 1

    async def follow(kv: EtcdKv) -> None:
        seen = 0
        async for _ in kv.watch("partitions", start):
            seen += 1
            if seen >= 2 * objects:
                return

    follows = [asyncio.create_task(follow(kv), name="watch-cost-follow") for kv in watching]
    await asyncio.sleep(0.5)  # every watch created
    slots = asyncio.Semaphore(IN_FLIGHT)

    async def batch(ops: list[BatchOp]) -> list[Any]:
        async with slots:
            return list(await writer.write_batch(ops))

    cpu, began = cpu_seconds(pid), time.monotonic()
    ranges = range(0, objects, BATCH)
    created = await asyncio.gather(
        *(
            batch([CreateOp("partitions", f"p-{n}", VALUE) for n in range(s, s + BATCH)])
            for s in ranges
        )
    )
    revisions = [revision for chunk in created for revision in chunk]
    await asyncio.gather(
        *(
            batch(
                [
                    UpdateOp("partitions", f"p-{n}", VALUE + b"!", revisions[n])
                    for n in range(s, s + BATCH)
                ]
            )
            for s in ranges
        )
    )
    async with asyncio.timeout(300):
        await asyncio.gather(*follows)
    spent = cpu_seconds(pid) - cpu
    print(
        f"  prev_kv={'on ' if prev_kv else 'off'}: etcd CPU {spent:.2f} s, "
        f"{time.monotonic() - began:.1f} s wall",
        flush=True,
    )
    for kv in [writer, *watching]:
        await kv.close()
    return spent


async def measure(args: argparse.Namespace) -> None:
    from tests.etcd_server import EtcdServer

    with tempfile.TemporaryDirectory(prefix="bench-etcd-watch-") as tmp:
        server = EtcdServer(Path(tmp))
        server.start()
        try:
            assert server.pid is not None
            spent: dict[bool, list[float]] = {True: [], False: []}
            for _ in range(args.rounds):
                for prev_kv in (True, False):
                    spent[prev_kv].append(
                        await one_round(
                            server.endpoint, server.pid, args.objects, args.watchers, prev_kv
                        )
                    )
        finally:
            server.stop()
    on, off = statistics.median(spent[True]), statistics.median(spent[False])
    print(f"median etcd CPU: prev_kv on {on:.2f} s, off {off:.2f} s ({on / off:.1f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", type=int, default=20_000)
    parser.add_argument("--watchers", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    print(
        f"machine: {machine()}; {args.objects} creates + {args.objects} updates in batches of "
        f"{BATCH}, {args.watchers} watchers"
    )
    asyncio.run(measure(args))


if __name__ == "__main__":
    main()
