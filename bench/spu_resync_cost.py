"""What one SPU's resync by cursor costs a new leader, with a store of a given size.

    .venv/bin/python -m bench.spu_resync_cost [--partitions 100000] [--rounds 3]

Builds, in this process, a cache of topics of 1000 partitions x 2 replicas over 3 SPUs
(each SPU hosts two thirds of them), then writes every partition's status once after its
spec (as a fill does: created, then Online with offsets), so the store's changes since
the SPUs' cursor are status writes only. Each SPU's set of replica specs is warm (as
``keep_warm`` keeps it); per round, each SPU's resync since that cursor is built as a
new leader builds it (``SpecSync.resync``: the changes since, its hosted set, the
delta) and encoded, and the times are printed (median and p99 over every SPU and round).
The cache is filled by applying puts directly, with no listing, so the revision journal
cannot tell the changes and every resync takes the path of a replica that listed its
cache after the cursor (a restarted one): a look at every object's spec revision.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from bench.common import machine, summary
from ha_sc.model import (
    Endpoint,
    ObjectMeta,
    PartitionSpec,
    SpuSpec,
    TopicReplicas,
    TopicSpec,
)
from ha_sc.model.kinds import Partition, Spu, Topic
from ha_sc.model.partition import PartitionResolution, PartitionStatus
from ha_sc.model.spu import SpuStatus
from ha_sc.model.topic import TopicStatus
from ha_sc.protocol import encode_message
from ha_sc.sc.spec_resync import spec_cursor
from ha_sc.sc.spu_spec_sync import ReplicaSpecs, SpecSync, spec_version
from ha_sc.store import GlobalStore

SPUS = (5001, 5002, 5003)
PER_TOPIC = 1000


def filled(partitions: int) -> GlobalStore:
    """A cache of ``partitions`` partitions, every one's status written after its spec."""
    cache = GlobalStore()
    revision = 0

    def next_revision() -> int:
        nonlocal revision
        revision += 1
        return revision

    for spu_id in SPUS:
        endpoint = Endpoint(host="127.0.0.1", port=spu_id)
        spec = SpuSpec(id=spu_id, public_endpoint=endpoint, private_endpoint=endpoint)
        meta = ObjectMeta(key=f"spu-{spu_id}", revision=next_revision())
        cache.spus.apply_put(Spu(meta=meta, spec=spec, status=SpuStatus()))  # type: ignore[attr-defined]
    for t in range((partitions + PER_TOPIC - 1) // PER_TOPIC):
        spec = TopicSpec(replicas=TopicReplicas.new_computed(PER_TOPIC, 2))
        meta = ObjectMeta(key=f"load-{t}", revision=next_revision())
        cache.topics.apply_put(Topic(meta=meta, spec=spec, status=TopicStatus()))  # type: ignore[attr-defined]
    keys = [f"load-{n // PER_TOPIC}-{n % PER_TOPIC}" for n in range(partitions)]
    for n, key in enumerate(keys):
        leader, follower = SPUS[n % 3], SPUS[(n + 1) % 3]
        spec = PartitionSpec(leader=leader, replicas=[leader, follower])
        meta = ObjectMeta(key=key, revision=next_revision())
        cache.partitions.apply_put(  # type: ignore[attr-defined]
            Partition(meta=meta, spec=spec, status=PartitionStatus())
        )
    online = PartitionStatus(resolution=PartitionResolution.ONLINE)
    for key in keys:
        old = cache.partitions.get(key)
        assert old is not None
        meta = ObjectMeta(key=key, revision=next_revision())
        cache.partitions.apply_put(old.model_copy(update={"meta": meta, "status": online}))  # type: ignore[attr-defined]
    return cache


async def measure(partitions: int, rounds: int) -> tuple[list[float], list[float], int]:
    cache = filled(partitions)
    cursor = spec_cursor(cache)
    specs = ReplicaSpecs(cache.topics)
    for spu_id in SPUS:
        await specs.hosted(spu_id, cache.partitions, spec_version(cache))
    built: list[float] = []
    encoded: list[float] = []
    size = 0
    for _ in range(rounds):
        for spu_id in SPUS:
            started = time.perf_counter()
            resync = await SpecSync(cache, spu_id, specs=specs).resync(1, cursor)
            assert resync is not None
            done = time.perf_counter()
            size = len(encode_message(resync))
            encoded.append(time.perf_counter() - done)
            built.append(done - started)
    return built, encoded, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--partitions", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    built, encoded, size = asyncio.run(measure(args.partitions, args.rounds))
    print(f"{args.partitions} partitions x 2 replicas on 3 SPUs, {args.rounds} rounds")
    print(f"  one SPU's resync built:   {summary(built)}")
    print(f"  encoded ({size / 1e6:.2f} MB):    {summary(encoded)}")


if __name__ == "__main__":
    main()
