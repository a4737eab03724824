"""What idle partition replicas cost an SPU's data plane: CPU and memory while nothing
is produced.

    .venv/bin/python -m bench.spu_idle_replicas [--partitions 1000] [--seconds 20]
        [--settle 5] [--windows 1] [--wait-ms 20000] [--idle-wait-ms 320000]

Two SPU data planes in this process (tests/dataplane_harness.py: real ports and
logs, replica specs applied as the SC would send them, no SC), ``--partitions``
partitions of 2 replicas, leaders alternating, so each SPU leads half and follows
half. Once both SPUs host every replica (at most 10 minutes) and ``--settle`` seconds
more passed, prints the CPU time of the process over ``--windows`` windows of
``--seconds`` of idleness each (their median too: on a loaded machine setting up may
spill into the first), and its peak RSS. ``--wait-ms`` and ``--idle-wait-ms`` are the
followers' fetch waits (``DataPlaneSettings``): with both equal, an idle fetch does
not back off.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import tempfile
import time
from pathlib import Path

from bench.common import machine
from ha_sc.protocol import Delta, ReplicaSpec
from ha_sc.spu.dataplane_settings import DataPlaneSettings
from tests.dataplane_harness import Cluster

HOSTED_WITHIN = 600.0


async def run(
    partitions: int, seconds: float, settle: float, windows: int, wait_ms: int, idle_wait_ms: int
) -> None:
    settings = DataPlaneSettings(replica_wait_ms=wait_ms, replica_idle_wait_ms=idle_wait_ms)
    with tempfile.TemporaryDirectory(prefix="bench-idle-") as directory:
        cluster = Cluster(Path(directory), [1, 2], settings)
        await cluster.start()
        try:
            specs = [
                ReplicaSpec(partition=f"t-{n}", leader=1 + n % 2, replicas=[1 + n % 2, 2 - n % 2])
                for n in range(partitions)
            ]
            started = time.process_time()
            for spu in cluster.spus.values():
                assert spu.state is not None
                spu.state.apply(Delta(epoch=100, replicas_changed=specs))
            deadline = time.monotonic() + HOSTED_WITHIN
            while time.monotonic() < deadline and not all(
                spu.plane is not None and len(spu.plane.registry) == partitions
                for spu in cluster.spus.values()
            ):
                await asyncio.sleep(0.5)
            await asyncio.sleep(settle)
            setup = time.process_time() - started
            idles = []
            for _ in range(windows):
                started = time.process_time()
                await asyncio.sleep(seconds)
                idles.append(time.process_time() - started)
        finally:
            await cluster.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    shares = ", ".join(f"{100 * idle / seconds / 2:.2f}%" for idle in idles)
    median = statistics.median(idles)
    print(
        f"{partitions} partitions x 2 replicas on 2 SPUs, fetch wait {wait_ms} ms backing off "
        f"to {idle_wait_ms} ms: setting them up (and {settle:g} s) took "
        f"{setup:.2f} s of CPU; idle for {windows} x {seconds:g} s: {median:.2f} s of CPU "
        f"per window, median ({100 * median / seconds / 2:.2f}% of a core per SPU; "
        f"windows: {shares}); peak RSS {rss:.0f} MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partitions", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--settle", type=float, default=5.0)
    parser.add_argument("--windows", type=int, default=1)
    default = DataPlaneSettings()
    parser.add_argument("--wait-ms", type=int, default=default.replica_wait_ms)
    parser.add_argument("--idle-wait-ms", type=int, default=default.replica_idle_wait_ms)
    args = parser.parse_args()
    print(machine())
    asyncio.run(
        run(
            args.partitions,
            args.seconds,
            args.settle,
            args.windows,
            args.wait_ms,
            args.idle_wait_ms,
        )
    )


if __name__ == "__main__":
    main()
