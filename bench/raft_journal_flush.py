"""What the durable Raft journal costs: KV write commit latency with and without the flush.

    .venv/bin/python -m bench.raft_journal_flush [--writes 400] [--rounds 2]

Three Raft KV nodes (the writer in this process, two in their own), once with the
journal flushed before every message (the default) and once without, alternating
``--rounds`` times so that load from elsewhere on the machine falls on both. Each
write is timed from the call to its answer (committed and applied on the writer),
one at a time (commit latency), then ``--window`` in flight (throughput).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from bench.common import machine, raft_group, summary
from bench.kv_write import partition_value
from ha_sc.model import Kind


async def one_group(
    data_dir: Path, durable: bool, writes: int, window: int, round_: int
) -> tuple[list[float], float]:
    async with raft_group(data_dir, in_process=1, peers=2, durable_journal=durable) as nodes:
        kv = nodes[0]
        value = partition_value("t", 0)
        latencies: list[float] = []
        for i in range(writes):
            start = time.perf_counter()
            await kv.create(Kind.PARTITION.value, f"r{round_}-serial-{i}", value)
            latencies.append(time.perf_counter() - start)
        keys = iter(f"r{round_}-window-{i}" for i in range(writes * 4))

        async def writer() -> None:
            for key in keys:
                await kv.create(Kind.PARTITION.value, key, value)

        start = time.perf_counter()
        await asyncio.gather(*(writer() for _ in range(window)))
        rate = writes * 4 / (time.perf_counter() - start)
        journal = kv.node.journal
        syncs = journal.syncs if journal is not None else 0
        print(f"round {round_}, durable={durable}: writer's journal flushed {syncs} times")
        return latencies, rate


async def run(args: argparse.Namespace) -> None:
    print(machine())
    results: dict[bool, tuple[list[float], list[float]]] = {True: ([], []), False: ([], [])}
    with tempfile.TemporaryDirectory(prefix="raft-flush-") as tmp:
        for round_ in range(args.rounds):
            for durable in (True, False):
                data_dir = Path(tmp) / f"{'durable' if durable else 'plain'}-{round_}"
                latencies, rate = await one_group(
                    data_dir, durable, args.writes, args.window, round_
                )
                results[durable][0].extend(latencies)
                results[durable][1].append(rate)
    for durable in (True, False):
        latencies, rates = results[durable]
        name = "flushed before answering" if durable else "not flushed (pysyncobj)"
        print(f"{name}: one at a time {summary(latencies)}")
        print(
            f"  {args.window} in flight: "
            + ", ".join(f"{rate:,.0f}/s" for rate in rates)
            + " per round"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=400, help="serial writes per group")
    parser.add_argument("--window", type=int, default=64, help="writes in flight")
    parser.add_argument("--rounds", type=int, default=2)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
