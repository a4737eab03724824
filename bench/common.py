"""What every benchmark shares: statistics, the machine line, and backends to run against."""

from __future__ import annotations

import asyncio
import os
import platform
import signal
import statistics
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from ha_sc.kv.api import KvStore
from ha_sc.kv.raft import RaftKv, RaftSettings
from tests.net import free_addresses

REPO = Path(__file__).resolve().parents[1]


def machine() -> str:
    """One line naming the machine a figure was measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}, {platform.system()}"


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary(values: Sequence[float], unit: str = "ms", scale: float = 1000.0) -> str:
    if not values:
        return "no samples"
    return (
        f"median {statistics.median(values) * scale:.1f} {unit}, "
        f"p99 {percentile(values, 99) * scale:.1f} {unit}, "
        f"max {max(values) * scale:.1f} {unit} (n={len(values)})"
    )


def rss_mib() -> float:
    """This process's resident set size."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


class RaftPeers:
    """Raft nodes in their own processes, beside the ones a benchmark runs in-process."""

    def __init__(
        self, addresses: list[str], data_dir: Path, *, durable_journal: bool = True
    ) -> None:
        self.addresses = addresses
        self.data_dir = data_dir
        self.extra = [] if durable_journal else ["--no-durable-journal"]
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, own: list[str]) -> None:
        everyone = own + self.addresses
        for index, address in enumerate(self.addresses):
            node_dir = self.data_dir / f"peer{index}"
            node_dir.mkdir(parents=True, exist_ok=True)
            with (node_dir / "peer.log").open("ab") as log:
                self.procs.append(
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-m",
                            "tests.raft_peer",
                            "--self",
                            address,
                            "--peers",
                            ",".join(a for a in everyone if a != address),
                            "--dir",
                            str(node_dir),
                            "--kind",
                            "none",
                            *self.extra,
                        ],
                        cwd=REPO,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(5)


@asynccontextmanager
async def raft_group(
    data_dir: Path, *, in_process: int, peers: int, durable_journal: bool = True
) -> AsyncIterator[list[RaftKv]]:
    """``in_process`` Raft KV nodes in this process and ``peers`` more in their own."""
    addresses = free_addresses(in_process + peers)
    own, others = addresses[:in_process], addresses[in_process:]
    group = RaftPeers(others, data_dir, durable_journal=durable_journal)
    group.start(own)
    settings = RaftSettings(durable_journal=durable_journal)
    nodes = [
        RaftKv(a, [b for b in addresses if b != a], data_dir / f"node{i}", settings=settings)
        for i, a in enumerate(own)
    ]
    try:
        await asyncio.gather(*(n.wait_ready() for n in nodes))
        yield nodes
    finally:
        await asyncio.gather(*(n.close() for n in nodes))
        group.stop()


async def fill(kv: KvStore, kind: str, items: Sequence[tuple[str, bytes]], window: int) -> None:
    """Create every item with at most ``window`` writes in flight."""
    queue = iter(items)

    async def writer() -> None:
        for key, value in queue:
            await kv.create(kind, key, value)

    await asyncio.gather(*(writer() for _ in range(window)))
