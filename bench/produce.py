"""Produce and consume throughput with the streaming client, and where the time goes.

    .venv/bin/python -m bench.produce [--records 1000000] [--record-bytes 100]
        [--sc-replicas 1] [--skip-cluster] [--profile] [--tls] [--partitions 1 3]

Three parts, each printed with the machine:

1. **encode**: the client's own work per record with no network: the ``send`` path
   (append to a batch, then encode the batch: record prefixes, header, crc), the
   ``send_many`` path, and the consumer's decoding (batch walk, crc, records).
2. **null SPU**: the producer against ``bench.null_spu`` (a process that acknowledges
   every batch at once and keeps nothing): what the client reaches over a real socket
   when the SPU costs nothing.
3. **cluster**: ``ha-sc cluster up --replicas R --spus 3`` in a temporary directory;
   per acks (leader, all) and partitions (1, 3; ``--partitions``) a fresh topic with 2
   replicas; records sent with ``send_many`` in calls of 10 000 (spread over the
   partitions), at most 8 calls unacknowledged: records/s and MB/s (of record values),
   ack latency per call (median, p99); then 300 records one at a time, each awaited
   (latency when idle); then everything read back from the beginning (consume; with
   acks=leader the last records are read once the follower has them: committed).
   With ``--tls`` the cluster is made with ``cluster up --tls`` (TLS on every port,
   client certificates between members) and the client checks it with its CA.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import subprocess
import sys
import time
from collections import deque
from collections.abc import Awaitable, Sequence
from pathlib import Path
from typing import TypeVar

from bench.common import machine, summary
from bench.local_cluster import ha_sc, layout, local_cluster, public_endpoints
from ha_sc.client import Offset, ProducerSettings, StreamClient, TopicProducer
from ha_sc.client.accumulator import PartitionBuffer
from ha_sc.client.consumer_record import decode_batch_records
from ha_sc.client.metadata import ClusterMetadata
from ha_sc.client.producer_batch import BulkAck, batch_clock
from ha_sc.protocol.data import Acks
from ha_sc.protocol.record_batch import iter_batches
from ha_sc.protocol.tls import TlsFiles, client_context
from tests.fake_spu import FakeSc
from tests.net import free_port

T = TypeVar("T")
CALL = 10_000
"""Records per ``send_many`` call."""
WINDOW = 8
"""Calls sent and not yet acknowledged, at most."""
IDLE_SAMPLES = 300
CONSUME_TIMEOUT = 120.0
"""Seconds to read every record back, at most."""


def values_of(count: int, size: int) -> list[bytes]:
    """Distinct values (one object each, as an application would have them)."""
    return [(b"%08d" % n).ljust(size, b"x")[:size] for n in range(count)]


def rate(records: int, size: int, seconds: float) -> str:
    return (
        f"{records / seconds:,.0f} records/s, {records * size / seconds / 1e6:.1f} MB/s "
        f"({records:,} records in {seconds:.2f} s)"
    )


# 1. the client's own work


def encode_part(values: Sequence[bytes], size: int) -> list[bytes]:
    """Time the send and send_many paths without I/O; returns the batches made."""
    loop = asyncio.new_event_loop()
    try:
        settings = ProducerSettings()

        def buffer() -> PartitionBuffer:
            return PartitionBuffer(
                0,
                batch_bytes=settings.batch_bytes,
                batch_records=settings.batch_records,
                new_future=loop.create_future,
                clock=batch_clock,
            )

        def drain(source: PartitionBuffer) -> list[bytes]:
            source.flushing = True
            wires = []
            while (batch := source.take(now=0.0, linger=0.0)) is not None:
                wires.append(batch.encode(1, 0))
            return wires

        one = buffer()
        started = time.perf_counter()
        for value in values:
            one.append(value, None)
        appended = time.perf_counter()
        wires = drain(one)
        encoded = time.perf_counter()
        many = buffer()
        for start in range(0, len(values), CALL):
            many.append_many(values[start : start + CALL], None)
        drain(many)
        bulk = time.perf_counter()
    finally:
        loop.close()
    count = len(values)
    print(
        f"  send path:      {(appended - started) / count * 1e6:.3f} us/record to append + "
        f"{(encoded - appended) / count * 1e6:.3f} us/record to encode batches "
        f"= {count / (encoded - started):,.0f} records/s on one core"
    )
    print(
        f"  send_many path: {(bulk - encoded) / count * 1e6:.3f} us/record "
        f"= {count / (bulk - encoded):,.0f} records/s on one core"
    )
    started = time.perf_counter()
    decoded = 0
    for wire in wires:
        for raw in iter_batches(wire):
            records = decode_batch_records(
                raw.payload,
                partition=0,
                base_offset=raw.header.base_offset,
                timestamp_ms=raw.header.first_timestamp_ms,
            )
            decoded += len(records)
    spent = time.perf_counter() - started
    print(
        f"  consumer decode: {spent / decoded * 1e6:.3f} us/record "
        f"= {decoded / spent:,.0f} records/s on one core (crc, records, record objects)"
    )
    return wires


# 2 and 3: producing through a producer


async def produce_bulk(
    producer: TopicProducer, values: Sequence[bytes]
) -> tuple[float, list[float]]:
    """Seconds until every record is acknowledged, sending with at most ``WINDOW`` calls
    unacknowledged (as an application with backpressure would); ack latency per call."""
    latencies: list[float] = []
    outstanding: deque[tuple[float, BulkAck]] = deque()

    async def oldest() -> None:
        sent, ack = outstanding.popleft()
        await ack
        latencies.append(time.perf_counter() - sent)

    started = time.perf_counter()
    for start in range(0, len(values), CALL):
        if len(outstanding) >= WINDOW:
            await oldest()
        outstanding.append(
            (time.perf_counter(), await producer.send_many(values[start : start + CALL]))
        )
    while outstanding:
        await oldest()
    return time.perf_counter() - started, latencies


async def produce_one_by_one(producer: TopicProducer, values: Sequence[bytes]) -> float:
    started = time.perf_counter()
    acks = [await producer.send(value) for value in values]
    await producer.flush()
    for ack in acks:
        await ack
    return time.perf_counter() - started


async def idle_latency(producer: TopicProducer, value: bytes) -> list[float]:
    samples = []
    for _ in range(IDLE_SAMPLES):
        sent = time.perf_counter()
        await (await producer.send(value))
        samples.append(time.perf_counter() - sent)
    return samples


def null_spu_part(values: Sequence[bytes], size: int) -> None:
    port = free_port()
    spu = subprocess.Popen(
        [sys.executable, "-m", "bench.null_spu", str(port)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert spu.stdout is not None and spu.stdout.readline().strip() == "ready"
        asyncio.run(_against_null_spu(f"127.0.0.1:{port}", values, size))
    finally:
        spu.kill()
        spu.wait(10)


async def _against_null_spu(address: str, values: Sequence[bytes], size: int) -> None:
    sc = FakeSc()
    sc.set_spu((5001, address))
    sc.set_partition("null", 0, 5001)
    metadata = ClusterMetadata(sc, watch=False)
    await metadata.start()
    try:
        producer = await TopicProducer.create("null", metadata)
        async with producer:
            seconds, latencies = await produce_bulk(producer, values)
            print(f"  send_many: {rate(len(values), size, seconds)}")
            print(f"    ack latency per call of {CALL:,}: {summary(latencies)}")
            tenth = values[: len(values) // 10]
            seconds = await produce_one_by_one(producer, tenth)
            print(f"  send (one await per record): {rate(len(tenth), size, seconds)}")
    finally:
        await metadata.close()


async def cluster_part(
    directory: Path,
    values: Sequence[bytes],
    size: int,
    *,
    profile: bool,
    partition_counts: Sequence[int] = (1, 3),
) -> None:
    ca = layout(directory).get("tls_ca")
    tls = None if ca is None else client_context(TlsFiles(ca=Path(ca)))
    async with StreamClient(public_endpoints(directory), tls=tls) as client:
        for acks in (Acks.LEADER, Acks.ALL):
            for partitions in partition_counts:
                topic = f"bench-{acks.value}-p{partitions}"
                ha_sc(directory, "topic", "create", topic, "-p", str(partitions), "-r", "2")
                settings = ProducerSettings(acks=acks)
                producer = await client.topic_producer(topic, settings)
                async with producer:
                    profiler = _profiler(profile and acks is Acks.LEADER and partitions == 1)
                    seconds, latencies = await _profiled(profiler, produce_bulk(producer, values))
                    print(f"  produce acks={acks.value} partitions={partitions}:")
                    print(f"    {rate(len(values), size, seconds)}")
                    print(f"    ack latency per call of {CALL:,}: {summary(latencies)}")
                    quiet = ProducerSettings(acks=acks, linger=0.0)
                    one = await client.topic_producer(topic, quiet)
                    async with one:
                        idle = await idle_latency(one, values[0])
                    print(f"    one record at a time, idle: {summary(idle)}")
                    if profiler is not None:
                        _print_profile(profiler)
                total = len(values) + IDLE_SAMPLES
                started = time.perf_counter()
                seen = 0
                stream = client.consumer(topic).stream(Offset.beginning())
                async with stream, asyncio.timeout(CONSUME_TIMEOUT):
                    async for records in stream.batches():
                        seen += len(records)
                        if seen >= total:
                            break
                seconds = time.perf_counter() - started
                assert seen == total, f"read {seen} of {total} records back from {topic}"
                print(f"    consume from the beginning: {rate(seen, size, seconds)}")


def _profiler(wanted: bool) -> cProfile.Profile | None:
    return cProfile.Profile() if wanted else None


async def _profiled(profiler: cProfile.Profile | None, run: Awaitable[T]) -> T:
    if profiler is None:
        return await run
    profiler.enable()
    try:
        return await run
    finally:
        profiler.disable()


def _print_profile(profiler: cProfile.Profile) -> None:
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(15)
    print("    where the client's time went (cProfile, by own time; profiling slows it):")
    for line in out.getvalue().splitlines()[6:]:
        if line.strip():
            print(f"      {line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--record-bytes", type=int, default=100)
    parser.add_argument("--sc-replicas", type=int, default=1)
    parser.add_argument("--skip-cluster", action="store_true")
    parser.add_argument("--profile", action="store_true", help="profile acks=leader, 1 partition")
    parser.add_argument("--tls", action="store_true", help="the cluster serves TLS on every port")
    parser.add_argument(
        "--partitions", type=int, nargs="+", default=[1, 3], help="partition counts to run"
    )
    args = parser.parse_args()
    values = values_of(args.records, args.record_bytes)
    print(f"machine: {machine()}")
    print(f"{args.records:,} records of {args.record_bytes} B")
    print("1. the client's own work, no network:")
    encode_part(values, args.record_bytes)
    print("2. producer against a null SPU (acks at once, keeps nothing):")
    null_spu_part(values, args.record_bytes)
    if args.skip_cluster:
        return
    tls = " with TLS on every port" if args.tls else ""
    print(f"3. cluster{tls}: {args.sc_replicas} SC replica(s), 3 SPUs, topics with 2 replicas:")
    up_flags = ["--tls"] if args.tls else []
    with local_cluster("raft", replicas=args.sc_replicas, spus=3, up_flags=up_flags) as directory:
        asyncio.run(
            cluster_part(
                directory,
                values,
                args.record_bytes,
                profile=args.profile,
                partition_counts=args.partitions,
            )
        )


if __name__ == "__main__":
    main()
