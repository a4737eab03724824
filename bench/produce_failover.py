"""Produce with acks=all through failures: SC leader SIGKILLs, partition-leader SPU SIGKILLs.

    .venv/bin/python -m bench.produce_failover [--duration 20] [--kill-every 5]
        [--rounds 2] [--trials 10] [--record-bytes 100] [--partitions 3]
        [--skip-a] [--skip-b]

One cluster, ``ha-sc cluster up --replicas 3 --spus 3`` (Raft) in a temporary
directory, stopped with ``ha-sc cluster down`` at the end, whatever happens.

(a) **SC leader killed every N s.** Topics of ``--partitions`` partitions x 2
    replicas; records of ``--record-bytes`` sent with ``send_many`` in calls of 1000
    (spread over the partitions), at most 8 calls unacknowledged, acks=all. After a 2 s
    warm-up, ``--rounds`` rounds, each on fresh topics: ``--duration`` s undisturbed,
    then as long while, every ``--kill-every`` s, the SC leader (its PID from ``cluster
    status``) is SIGKILLed and brought back with ``cluster up``. Alternating the two
    spreads the machine's drift over both. Prints records/s and MB/s of both, their
    ratio (killed / undisturbed), the ack latency per call (median, p99), the largest
    gap between consecutive acks and the records whose delivery failed.
(b) **Partition-leader SPU killed.** A topic of 1 partition x 2 replicas; a steady
    producer (a call of 10 records every 2 ms, acks=all); per trial, after 1 s the SPU
    leading the partition is SIGKILLed, and the time is taken from the kill to the first
    ack of a call made after it (the new leader committed a record sent after the kill).
    The SPU is brought back with ``cluster up`` and the next trial waits until the
    partition has an in-sync follower again. Median and p99 over ``--trials``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import machine, summary
from bench.local_cluster import ha_sc, local_cluster, public_endpoints, status
from ha_sc.client import AdminClient, BulkAck, ProducerSettings, StreamClient, TopicProducer
from ha_sc.model import PartitionResolution
from ha_sc.protocol.data import Acks

CALL = 1_000
WINDOW = 8
STEADY_CALL = 10
STEADY_EVERY = 0.002
UNDISTURBED = "undisturbed"
KILLED = "SC leader killed"
RESUME_BOUND = 30.0
"""A trial of (b) that sees no ack this long after the kill counts as failed."""


@dataclass
class Run:
    seconds: float = 0.0
    records: int = 0
    latencies: list[float] = field(default_factory=list)
    largest_gap: float = 0.0
    """Between consecutive acks within one ``produce_for``."""
    errors: int = 0
    kills: int = 0


def values_of(count: int, size: int) -> list[bytes]:
    return [(b"%08d" % n).ljust(size, b"x")[:size] for n in range(count)]


def bring_back(directory: Path) -> None:
    ha_sc(directory, "cluster", "up", "--replicas", "3", "--spus", "3", "--backend", "raft")


def kill_sc_leader(directory: Path) -> bool:
    leader = status(directory)["leader"]
    if not leader or not leader.get("pid"):
        return False
    os.kill(int(leader["pid"]), signal.SIGKILL)
    return True


async def produce_for(
    producer: TopicProducer, values: Sequence[bytes], duration: float, run: Run
) -> None:
    """Windowed ``send_many`` calls for ``duration`` s; fills ``run``."""
    outstanding: deque[tuple[float, int, BulkAck]] = deque()
    last_ack: float | None = None

    async def oldest() -> None:
        sent, count, ack = outstanding.popleft()
        try:
            await ack
        except Exception:  # counted; the bench goes on
            run.errors += count
            return
        nonlocal last_ack
        now = time.perf_counter()
        run.latencies.append(now - sent)
        if last_ack is not None:
            run.largest_gap = max(run.largest_gap, now - last_ack)
        last_ack = now
        run.records += count

    started = time.perf_counter()
    position = 0
    while time.perf_counter() - started < duration:
        if len(outstanding) >= WINDOW:
            await oldest()
        chunk = values[position : position + CALL]
        position = (position + CALL) % (len(values) - CALL + 1)
        outstanding.append((time.perf_counter(), len(chunk), await producer.send_many(chunk)))
        await asyncio.sleep(0)
    while outstanding:
        await oldest()
    run.seconds += time.perf_counter() - started


async def sc_killer(directory: Path, every: float, until: float, run: Run) -> None:
    """SIGKILL the SC leader every ``every`` s until ``until`` (monotonic), bringing it
    back with ``cluster up`` (in a thread, so the producer goes on)."""
    next_kill = time.monotonic() + every
    while next_kill < until:
        await asyncio.sleep(max(0.0, next_kill - time.monotonic()))
        if await asyncio.to_thread(kill_sc_leader, directory):
            run.kills += 1
        await asyncio.to_thread(bring_back, directory)
        next_kill += every


async def part_a(directory: Path, args: argparse.Namespace) -> None:
    values = values_of(200_000, args.record_bytes)
    runs: dict[str, Run] = {UNDISTURBED: Run(), KILLED: Run()}
    async with StreamClient(public_endpoints(directory), sc_timeout=1.0) as client:
        ha_sc(directory, "topic", "create", "warm-up", "-p", str(args.partitions), "-r", "2")
        async with await client.topic_producer(
            "warm-up", ProducerSettings(acks=Acks.ALL)
        ) as producer:
            await produce_for(producer, values, 2.0, Run())
        for round_ in range(args.rounds):
            for name in (UNDISTURBED, KILLED):
                topic = f"{'steady' if name == UNDISTURBED else 'disturbed'}-{round_}"
                ha_sc(directory, "topic", "create", topic, "-p", str(args.partitions), "-r", "2")
                run = runs[name]
                async with await client.topic_producer(
                    topic, ProducerSettings(acks=Acks.ALL)
                ) as producer:
                    if name == UNDISTURBED:
                        await produce_for(producer, values, args.duration, run)
                        continue
                    until = time.monotonic() + args.duration
                    killer = asyncio.create_task(sc_killer(directory, args.kill_every, until, run))
                    try:
                        await produce_for(producer, values, args.duration, run)
                    finally:
                        await killer
    size = args.record_bytes
    print(
        f"(a) acks=all, {args.partitions} partitions x 2 replicas, {size} B records, "
        f"send_many calls of {CALL}, {WINDOW} in flight; {args.rounds} rounds of "
        f"{args.duration:g} s undisturbed then {args.duration:g} s with the SC leader "
        f"SIGKILLed every {args.kill_every:g} s (each on a fresh topic)"
    )
    for name, run in runs.items():
        rate = run.records / run.seconds
        print(
            f"  {name:17s} {rate:,.0f} records/s, {rate * size / 1e6:.2f} MB/s "
            f"({run.records:,} records in {run.seconds:.1f} s, {run.kills} SC leader kills, "
            f"{run.errors} records failed)"
        )
        print(f"    ack latency per call: {summary(run.latencies)}")
        print(f"    largest gap between consecutive acks: {run.largest_gap * 1000:.0f} ms")
    base, hit = runs[UNDISTURBED], runs[KILLED]
    ratio = (hit.records / hit.seconds) / (base.records / base.seconds)
    print(f"  ratio, killed / undisturbed: {ratio:.2f}")


async def part_b(directory: Path, args: argparse.Namespace) -> None:
    topic = "spu-failover"
    ha_sc(directory, "topic", "create", topic, "-p", "1", "-r", "2")
    samples: list[float] = []
    failed = 0
    endpoints = public_endpoints(directory)
    async with (
        AdminClient(endpoints, timeout=3.0) as admin,
        StreamClient(endpoints, sc_timeout=1.0) as client,
    ):
        for _ in range(args.trials):
            await in_sync(admin, topic)
            async with await client.topic_producer(
                topic, ProducerSettings(acks=Acks.ALL, linger=0.0)
            ) as producer:
                resumed = await one_spu_trial(directory, admin, producer, topic)
            if resumed is None:
                failed += 1
            else:
                samples.append(resumed)
            await asyncio.to_thread(bring_back, directory)
    print(
        f"(b) SIGKILL of the partition-leader SPU -> first acks=all ack of a record sent "
        f"after it (1 partition x 2 replicas, {STEADY_CALL} records every "
        f"{STEADY_EVERY * 1000:g} ms): {summary(samples)}"
        + (f"; {failed} trials saw no ack within {RESUME_BOUND:g} s" if failed else "")
    )


async def in_sync(admin: AdminClient, topic: str, timeout: float = 120.0) -> int:
    """Until the partition is Online with an in-sync follower; its leader SPU."""
    deadline = time.monotonic() + timeout
    while True:
        (partition,) = await admin.list_partitions(topic)
        if partition.status.resolution is PartitionResolution.ONLINE and partition.status.lsr >= 1:
            return partition.spec.leader
        if time.monotonic() > deadline:
            raise TimeoutError(f"{topic}: no in-sync follower: {partition.status}")
        await asyncio.sleep(0.2)


async def one_spu_trial(
    directory: Path, admin: AdminClient, producer: TopicProducer, topic: str
) -> float | None:
    """Steady production; SIGKILL the leader SPU after 1 s; seconds to the first ack of
    a call made after the kill, or None."""
    leader = await in_sync(admin, topic)
    pid = next(s["pid"] for s in status(directory)["spus"] if s["id"] == leader)
    killed_at: float | None = None
    first_ack_after: list[float] = []
    pending: set[asyncio.Task[None]] = set()

    async def timed(ack: BulkAck, after_kill: bool) -> None:
        try:
            await ack
        except Exception:  # a failed call is no resumption
            return
        if after_kill and not first_ack_after:
            first_ack_after.append(time.perf_counter())

    started = time.perf_counter()
    value = [b"x" * 100] * STEADY_CALL
    while True:
        now = time.perf_counter()
        if killed_at is None and now - started >= 1.0:
            os.kill(int(pid), signal.SIGKILL)
            killed_at = time.perf_counter()
        if first_ack_after or (killed_at is not None and now - killed_at > RESUME_BOUND):
            break
        ack = await producer.send_many(value, partition=0)
        task = asyncio.create_task(timed(ack, killed_at is not None))
        pending.add(task)
        task.add_done_callback(pending.discard)
        await asyncio.sleep(STEADY_EVERY)
    await asyncio.gather(*pending)
    if not first_ack_after or killed_at is None:
        return None
    return first_ack_after[0] - killed_at


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--kill-every", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--record-bytes", type=int, default=100)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--skip-a", action="store_true")
    parser.add_argument("--skip-b", action="store_true")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with local_cluster("raft", replicas=3, spus=3) as directory:
        if not args.skip_a:
            asyncio.run(part_a(directory, args))
        if not args.skip_b:
            asyncio.run(part_b(directory, args))
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
