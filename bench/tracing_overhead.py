"""What tracing costs: the controller and topic creates with tracing off vs on (span
file), and SPU produce with tracing off vs on (1% of produce requests sampled).

    .venv/bin/python -m bench.tracing_overhead [--topics 150] [--partitions 3]
        [--rounds 3] [--cluster-topics 20] [--requests 4000] [--batch 10]

Controller (in-process, memory KV, 3 SPUs, so the figure is the SC's own CPU): each
mode runs in a fresh process (the OpenTelemetry API takes one tracer provider per
process; off is the API's no-op tracer, on exports every span to a JSON-lines file
through the batch processor). Throughput: ``--topics`` topics created at once, time
until every partition is Online (partitions/s). Latency: topics created one at a time,
create -> every partition Online. Modes alternate over ``--rounds``, so drift on a
shared machine hits both alike.

Topic create on a real cluster: ``cluster up`` (Raft, 3 replicas, 3 SPUs) without and
with ``--trace-file``; ``--cluster-topics`` topics created one at a time through the
public API, create -> every partition Online.

Produce: ``cluster up --replicas 1 --spus 2`` without and with ``--trace-file`` (the
SPU traces 1% of produce requests by default); ``--requests`` produce requests of
``--batch`` records (100 B) pipelined 16 deep at the leader, acks=leader.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import REPO, machine, summary
from bench.local_cluster import ha_sc, local_cluster, public_endpoints
from bench.produce_spu import blast, frames, leader_of
from bench.topic_online import trial
from ha_sc.client import AdminClient
from ha_sc.protocol.data import Acks


class InProcessController:
    """The leader's controller loop over the memory KV with 3 connected SPUs."""

    SPUS = (5001, 5002, 5003)

    def __init__(self, partitions: int) -> None:
        from election.guard import Guard
        from election.term import Term
        from ha_sc.kv.memory import MemoryKv
        from ha_sc.model import TopicReplicas, TopicSpec, encode_value
        from ha_sc.store import GlobalStore
        from ha_sc.tasks import Supervisor

        self.partitions = partitions
        self.kv, self.cache, self.supervisor = MemoryKv(), GlobalStore(), Supervisor()
        holder = self.kv.leases.acquire("sc", "bench")
        assert holder is not None
        self.term = Term(Guard("sc", holder.epoch), valid_until=time.monotonic() + 3600)
        self.spec = encode_value(TopicSpec(replicas=TopicReplicas.new_computed(partitions, 2)))

    async def start(self) -> asyncio.Task[None]:
        from ha_sc.controllers.loop import ControllerLoop
        from ha_sc.controllers.writer import ActionWriter
        from ha_sc.model import Endpoint, Kind, SpuSpec, encode_value
        from ha_sc.store import start_dispatchers

        start_dispatchers(self.cache, self.kv, self.supervisor)
        for spu_id in self.SPUS:
            spec = SpuSpec(
                id=spu_id,
                public_endpoint=Endpoint(host="127.0.0.1", port=spu_id),
                private_endpoint=Endpoint(host="127.0.0.1", port=spu_id + 1000),
            )
            await self.kv.create(Kind.SPU.value, f"spu-{spu_id}", encode_value(spec))
        loop = ControllerLoop(
            self.cache,
            ActionWriter(self.kv, self.cache),
            connected=lambda: set(self.SPUS),
            resync=0.05,
            min_interval=0.0,
        )
        return asyncio.create_task(loop.run(self.term), name="controllers")

    async def create(self, name: str) -> None:
        """As the API's handler does it: a request span, a fenced write."""
        from ha_sc.model import Kind
        from ha_sc.telemetry.tracing_context import tracer
        from ha_sc.telemetry.tracing_spans import fenced_write

        with (
            tracer("bench").start_as_current_span("POST /api/v1/topics"),
            fenced_write("create", Kind.TOPIC.value, name, self.term.epoch),
        ):
            await self.kv.create(Kind.TOPIC.value, name, self.spec, guard=self.term.guard)

    async def until_online(self, names: list[str]) -> None:
        from ha_sc.model import PartitionResolution

        keys = {f"{n}-{p}" for n in names for p in range(self.partitions)}
        deadline = time.monotonic() + 120
        while not all(
            (found := self.cache.partitions.get(key)) is not None
            and found.status.resolution is PartitionResolution.ONLINE
            for key in keys
        ):
            if time.monotonic() > deadline:
                raise TimeoutError("partitions not Online")
            await asyncio.sleep(0.001)


async def controller_child(
    topics: int, partitions: int, trace_file: Path | None
) -> dict[str, object]:
    from ha_sc.telemetry.tracing import SC_SERVICE, sc_resource, start_tracing

    provider = None
    if trace_file is not None:
        provider = start_tracing(SC_SERVICE, sc_resource("bench", "memory"), trace_file=trace_file)
    controller = InProcessController(partitions)
    task = await controller.start()
    batch = [f"burst-{n}" for n in range(topics)]
    started = time.perf_counter()
    for name in batch:
        await controller.create(name)
    await controller.until_online(batch)
    burst = time.perf_counter() - started
    latencies = []
    for n in range(max(10, topics // 5)):
        started = time.perf_counter()
        await controller.create(f"one-{n}")
        await controller.until_online([f"one-{n}"])
        latencies.append(time.perf_counter() - started)
    controller.term.end("bench over")
    await asyncio.wait_for(task, 10)
    await controller.supervisor.stop()
    if provider is not None:
        provider.shutdown()
    return {"partitions_per_s": topics * partitions / burst, "latencies": latencies}


def controller_round(args: argparse.Namespace, traced: bool, spans: Path) -> dict[str, object]:
    command = [sys.executable, "-m", "bench.tracing_overhead", "--child"]
    command += ["--topics", str(args.topics), "--partitions", str(args.partitions)]
    if traced:
        command += ["--trace-file", str(spans)]
    out = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True).stdout
    result: dict[str, object] = json.loads(out.splitlines()[-1])
    return result


async def cluster_creates(directory: Path, trials: int, partitions: int) -> list[float]:
    """Create -> every partition Online through the public API, one topic at a time."""
    async with AdminClient(public_endpoints(directory)) as client:
        await trial(client, "warm-up", partitions, 2)
        return [(await trial(client, f"bench-{n}", partitions, 2))[1] for n in range(trials)]


async def produce_run(directory: Path, requests: int, batch: int) -> float:
    topic = "bench-traced"
    ha_sc(directory, "topic", "create", topic, "-p", "1", "-r", "2")
    leader, _ = await leader_of(directory, topic)
    await blast(leader, frames(topic, Acks.LEADER, 200, batch, 100), 16)  # warm-up
    ha_sc(directory, "topic", "delete", topic)
    ha_sc(directory, "topic", "create", topic, "-p", "1", "-r", "2")
    leader, _ = await leader_of(directory, topic)
    elapsed, _ = await blast(leader, frames(topic, Acks.LEADER, requests, batch, 100), 16)
    return requests * batch / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topics", type=int, default=150)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--cluster-topics", type=int, default=20)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--trace-file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--skip-produce", action="store_true")
    args = parser.parse_args()
    if args.child:
        result = asyncio.run(controller_child(args.topics, args.partitions, args.trace_file))
        print(json.dumps(result))
        return
    print(machine())
    rates: dict[bool, list[float]] = {False: [], True: []}
    latencies: dict[bool, list[float]] = {False: [], True: []}
    with tempfile.TemporaryDirectory(prefix="bench-tracing-") as tmp:
        for n in range(args.rounds):
            for traced in (False, True):
                result = controller_round(args, traced, Path(tmp) / f"round-{n}.jsonl")
                rates[traced].append(float(result["partitions_per_s"]))  # type: ignore[arg-type]
                latencies[traced].extend(result["latencies"])  # type: ignore[arg-type]
        spans = sum(len(p.read_text().splitlines()) for p in Path(tmp).glob("*.jsonl"))
    print(
        f"controller, {args.topics} topics x {args.partitions} partitions at once, "
        f"{args.rounds} rounds (memory KV, in-process; on: {spans} spans written)"
    )
    for traced in (False, True):
        label = "on " if traced else "off"
        print(
            f"  tracing {label}: {statistics.median(rates[traced]):.0f} partitions/s "
            f"(median of {args.rounds}); create -> Online {summary(latencies[traced])}"
        )
    rate_ratio = statistics.median(rates[True]) / statistics.median(rates[False])
    latency_ratio = statistics.median(latencies[True]) / statistics.median(latencies[False])
    print(f"  on/off: throughput x{rate_ratio:.3f}, create latency (median) x{latency_ratio:.3f}")
    created: dict[bool, list[float]] = {}
    for traced in (False, True):
        with tempfile.TemporaryDirectory(prefix="bench-tracing-spans-") as spans_dir:
            flags = ["--trace-file", spans_dir] if traced else []
            with local_cluster("raft", up_flags=flags) as directory:
                created[traced] = asyncio.run(
                    cluster_creates(directory, args.cluster_topics, args.partitions)
                )
    print(
        f"topic create through the API, cluster up (raft, 3 SC replicas, 3 SPUs), "
        f"{args.cluster_topics} topics of {args.partitions} x 2, create -> every partition Online"
    )
    for traced in (False, True):
        print(f"  tracing {'on ' if traced else 'off'}: {summary(created[traced])}")
    ratio = statistics.median(created[True]) / statistics.median(created[False])
    print(f"  on/off: create latency (median) x{ratio:.3f}")
    if args.skip_produce:
        return
    produced: dict[bool, float] = {}
    for traced in (False, True):
        with tempfile.TemporaryDirectory(prefix="bench-tracing-spans-") as spans_dir:
            flags = ["--trace-file", spans_dir] if traced else []
            with local_cluster("raft", replicas=1, spus=2, up_flags=flags) as directory:
                produced[traced] = asyncio.run(produce_run(directory, args.requests, args.batch))
    print(
        f"produce, {args.requests} requests of {args.batch} x 100 B records, acks=leader, "
        "16 in flight"
    )
    print(f"  tracing off: {produced[False]:.0f} records/s")
    print(f"  tracing on (1% of produce requests sampled): {produced[True]:.0f} records/s")
    print(f"  on/off: x{produced[True] / produced[False]:.3f}")


if __name__ == "__main__":
    main()
