"""Do Raft KV replicas agree after a heavy write load with forced leader changes?

    .venv/bin/python -m bench.raft_replicas_agree [--objects 200000] [--window 64]
        [--leader-changes 8]

Three Raft KV nodes on loopback: the writer in this process, two peers in their own
(tests.raft_peer). The writer creates ``--objects`` partition objects, ``--window``
writes in flight, while the Raft leader is deposed ``--leader-changes`` times, spread
over the run (SIGKILL and restart, SIGSTOP past an election then SIGCONT, or a
hand-over when the writer leads). Then it waits until every replica stands at the
writer's revision and compares their fingerprints (digest of every object with its
revisions, and of the client-session table). It also counts pysyncobj's CRITICAL
"truncating already-applied log entries" on every node. Exits 1 when replicas differ,
a write failed, or the store's revision is not exactly the number of writes.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import machine
from bench.kv_write import partition_value
from ha_sc.kv.api import KvError
from ha_sc.kv.raft import RaftKv, RaftSettings
from ha_sc.model import Kind
from tests.net import free_addresses
from tests.raft_peer_process import PeerProcess, depose_leader

TRUNCATION = "truncating already-applied log entries"


class TruncationCount(logging.Handler):
    """Counts pysyncobj's truncation messages logged in this process."""

    def __init__(self) -> None:
        super().__init__(logging.CRITICAL)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if TRUNCATION in record.getMessage():
            self.count += 1


@dataclass
class Load:
    written: int = 0
    failures: list[KvError] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    seconds: float = 0.0


async def write_load(node: RaftKv, peers: list[PeerProcess], args: argparse.Namespace) -> Load:
    """The creates, ``args.window`` in flight, with the leader changes spread over them."""
    load = Load()
    keys = iter(range(args.objects))
    value = partition_value("bench", 0)

    async def writer() -> None:
        for n in keys:
            try:
                await node.create(Kind.PARTITION.value, f"bench-{n}", value)
                load.written += 1
            except KvError as failed:
                load.failures.append(failed)

    start = time.perf_counter()
    writers = asyncio.gather(*(writer() for _ in range(args.window)))
    for change in range(args.leader_changes):
        target = (change + 1) * args.objects / (args.leader_changes + 1)
        while load.written + len(load.failures) < target and not writers.done():
            await asyncio.sleep(0.1)
        if writers.done():
            break
        load.changes.append(await depose_leader(node, peers, kill=change % 2 == 0, frozen_for=1.0))
        print(f"  leader change {change + 1} at {load.written} writes: {load.changes[-1]}")
    await writers
    load.seconds = time.perf_counter() - start
    return load


async def fingerprints(node: RaftKv, peers: list[PeerProcess]) -> tuple[list[Any], list[list[Any]]]:
    """The writer's fingerprint, and each peer's once it stands at the same revision."""
    mine = list(node.fingerprint())
    settle = time.perf_counter()
    async with asyncio.timeout(300):
        ticks = 0
        while not all((p.applied().get("fingerprint") or [0])[0] >= mine[0] for p in peers):
            await asyncio.sleep(0.2)
            ticks += 1
            if ticks % 50 == 0:
                at = [p.applied().get("revision") for p in peers]
                print(f"  waiting for replicas at revision {mine[0]}: they are at {at}")
                if ticks % 250 == 0:
                    print(f"    writer raft: {node.node.getStatus()}")
                    for peer in peers:
                        print(f"    {peer.address} raft: {peer.applied().get('raft')}")
    print(f"every replica at revision {mine[0]} after {time.perf_counter() - settle:.1f} s")
    return mine, [p.applied()["fingerprint"] for p in peers]


async def run(args: argparse.Namespace, data_dir: Path) -> bool:
    truncations = TruncationCount()
    logging.getLogger("pysyncobj").addHandler(truncations)
    addresses = free_addresses(3)
    peers = [
        PeerProcess(a, [b for b in addresses if b != a], data_dir / f"peer{i}", kind="none")
        for i, a in enumerate(addresses[1:])
    ]
    for peer in peers:
        peer.start()
    settings = RaftSettings(commit_timeout=30.0)
    node = RaftKv(addresses[0], addresses[1:], data_dir / "writer", settings=settings)
    try:
        await node.wait_ready(60)
        load = await write_load(node, peers, args)
        print(
            f"{load.written} writes in {load.seconds:.1f} s "
            f"({load.written / load.seconds:,.0f}/s), {len(load.failures)} failed, "
            f"{node.resent} sent more than once, {len(load.changes)} leader changes"
        )
        for failed in load.failures[:5]:
            print(f"  failed: {failed!r}")
        mine, theirs = await fingerprints(node, peers)
        print(f"copies answered from the session table: {node.commands.sessions.copies_answered}")
        trims = [
            [node.node.append_entries_trimmed, node.node.append_entries_ignored],
            *(p.applied().get("append_entries") for p in peers),
        ]
        print(f"append-entries restarted past held entries / dropped, per node: {trims}")
        print(f"writer  fingerprint: objects {mine[1][:16]} sessions {mine[2][:16]}")
        for peer, theirs_one in zip(peers, theirs, strict=True):
            print(
                f"{peer.address} fingerprint: objects {theirs_one[1][:16]} "
                f"sessions {theirs_one[2][:16]}"
            )
        counts = [truncations.count, *(p.log_text().count(TRUNCATION) for p in peers)]
        print(f"'{TRUNCATION}' logged, per node: {counts}")
        exact = mine[0] == load.written
        agree = all(t == mine for t in theirs)
        print(f"store revision {mine[0]} == writes answered {load.written}: {exact}")
        print(f"replicas identical: {agree}")
        return agree and exact and not load.failures
    finally:
        await node.close()
        for peer in peers:
            peer.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", type=int, default=200_000)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--leader-changes", type=int, default=8)
    parser.add_argument("--data-dir", type=Path, help="keep the nodes' data and logs here")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print(f"{args.objects} creates, {args.window} in flight, {args.leader_changes} leader changes")
    if args.data_dir is not None:
        args.data_dir.mkdir(parents=True, exist_ok=False)
        ok = asyncio.run(run(args, args.data_dir))
    else:
        with tempfile.TemporaryDirectory(prefix="bench-raft-agree-") as tmp:
            ok = asyncio.run(run(args, Path(tmp)))
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
