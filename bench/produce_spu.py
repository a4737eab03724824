"""SPU produce throughput, server side: ready-made batches pipelined at the partition
leader over one connection, no client library in the way.

    .venv/bin/python -m bench.produce_spu [--records 2000000] [--batch 1000]
        [--record-bytes 100] [--window 16] [--replication 2]

``ha-sc cluster up --replicas 1 --spus 2`` in a temporary directory (fsync=always,
the default); per acks (leader, all) a fresh topic of 1 partition with
``--replication`` replicas. The batches (``--batch`` records of ``--record-bytes``
each, idempotent sequences) are encoded before the clock starts; the client keeps
``--window`` produce requests in flight on one connection to the leader. Prints
records/s and MB/s (batch bytes) and the latency of each request (sent to answered:
median, p99), then reads everything back from the follower (acks=all) to check that
nothing is missing.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

from bench.common import machine, summary
from bench.local_cluster import ha_sc, local_cluster, public_endpoints
from ha_sc.client import AdminClient
from ha_sc.protocol.data import Acks, ProduceRequest, ProduceResponse, encode_frame
from tests.data_client import RawDataClient, records_batch


def frames(
    topic: str, acks: Acks, count: int, batch: int, record_bytes: int
) -> list[tuple[ProduceRequest, bytes]]:
    values = [bytes([n % 256]) * record_bytes for n in range(batch)]
    out = []
    for n in range(count):
        body = records_batch(values, producer_id=77, base_sequence=n * batch)
        out.append((ProduceRequest(id=n + 1, topic=topic, partition=0, acks=acks), body))
    return out


async def leader_of(directory: Path, topic: str) -> tuple[str, str]:
    """The public addresses of the leader of ``topic``-0 and of one follower."""
    async with AdminClient(public_endpoints(directory)) as admin:
        for _ in range(200):
            partitions = await admin.list_partitions(topic)
            spus = {s.spec.id: str(s.spec.public_endpoint) for s in await admin.list_spus()}
            if partitions and partitions[0].status.resolution.value == "Online":
                spec = partitions[0].spec
                follower = next((r for r in spec.replicas if r != spec.leader), spec.leader)
                return spus[spec.leader], spus[follower]
            await asyncio.sleep(0.1)
    raise TimeoutError(f"{topic} has no online leader")


async def blast(
    address: str, requests: list[tuple[ProduceRequest, bytes]], window: int
) -> tuple[float, list[float]]:
    """Seconds to have every request answered, and each one's latency."""
    sent_at: dict[int, float] = {}
    latencies: list[float] = []
    encoded = [b"".join(bytes(p) for p in encode_frame(h, b)) for h, b in requests]
    async with RawDataClient(address) as client:
        started = time.perf_counter()
        next_index = 0
        for answered in range(len(requests)):
            while next_index < len(requests) and next_index - answered < window:
                sent_at[requests[next_index][0].id] = time.perf_counter()
                client.send_raw(encoded[next_index])
                next_index += 1
            response, _ = await client.receive(timeout=60)
            assert isinstance(response, ProduceResponse), response
            if response.error is not None:
                raise RuntimeError(f"produce failed: {response.error}")
            latencies.append(time.perf_counter() - sent_at.pop(response.id))
        return time.perf_counter() - started, latencies


async def count_records(address: str, topic: str) -> int:
    async with RawDataClient(address) as client:
        return len(await client.read_all(topic, 0))


async def run(directory: Path, args: argparse.Namespace) -> None:
    count = args.records // args.batch
    for acks in (Acks.LEADER, Acks.ALL):
        topic = f"bench-{acks.value}"
        ha_sc(directory, "topic", "create", topic, "-p", "1", "-r", str(args.replication))
        leader, follower = await leader_of(directory, topic)
        requests = frames(topic, acks, count, args.batch, args.record_bytes)
        size = sum(len(body) for _, body in requests)
        elapsed, latencies = await blast(leader, requests, args.window)
        records = count * args.batch
        print(
            f"acks={acks.value}: {records / elapsed / 1e6:.2f} M records/s, "
            f"{size / elapsed / 1e6:.0f} MB/s ({records} records in {elapsed:.2f} s); "
            f"request latency {summary(latencies)}"
        )
        if acks is Acks.ALL and args.replication > 1:
            found = await count_records(follower, topic)
            print(f"  the follower holds {found} of {records} records (committed)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=2_000_000)
    parser.add_argument("--batch", type=int, default=1000, help="records per batch")
    parser.add_argument("--record-bytes", type=int, default=100)
    parser.add_argument("--window", type=int, default=16, help="requests in flight")
    parser.add_argument("--replication", type=int, default=2)
    args = parser.parse_args()
    print(machine())
    print(
        f"1 partition x {args.replication} replicas, batches of {args.batch} x "
        f"{args.record_bytes} B records, {args.window} requests in flight, fsync=always"
    )
    with local_cluster("raft", replicas=1, spus=max(2, args.replication)) as directory:
        asyncio.run(run(directory, args))


if __name__ == "__main__":
    main()
