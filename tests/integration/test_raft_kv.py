"""Raft KV nodes killed and restarted for real: separate OS processes, SIGKILL."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ha_sc.kv.raft import RaftKv
from tests.net import free_addresses

pytestmark = [pytest.mark.raft, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


class Peer:
    """A Raft node in its own process; stopped only by its own PID."""

    def __init__(self, address: str, peers: list[str], data_dir: Path) -> None:
        self.address = address
        self.peers = peers
        self.data_dir = data_dir
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with (self.data_dir / "peer.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.raft_peer",
                    "--self",
                    self.address,
                    "--peers",
                    ",".join(self.peers),
                    "--dir",
                    str(self.data_dir),
                ],
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def applied(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads((self.data_dir / "applied.json").read_text())
        except (FileNotFoundError, ValueError):
            return {"revision": 0, "keys": [], "ready": False}
        return data

    async def wait_applied(self, revision: int, timeout: float = 20.0) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while (state := self.applied())["revision"] < revision:
                await asyncio.sleep(0.05)
        return state


@pytest.fixture
def group(tmp_path: Path) -> Iterator[tuple[list[str], list[Peer]]]:
    """Addresses of three nodes; nodes 1 and 2 run as processes, node 0 in the test."""
    addresses = free_addresses(3)
    peers = [
        Peer(addresses[i], [a for a in addresses if a != addresses[i]], tmp_path / f"node{i}")
        for i in (1, 2)
    ]
    for peer in peers:
        peer.start()
    try:
        yield addresses, peers
    finally:
        for peer in peers:
            peer.kill()


def local_node(addresses: list[str], data_dir: Path) -> RaftKv:
    return RaftKv(addresses[0], addresses[1:], data_dir)


async def test_killed_node_restarts_and_catches_up(
    group: tuple[list[str], list[Peer]], tmp_path: Path
) -> None:
    addresses, (peer1, peer2) = group
    node = local_node(addresses, tmp_path / "node0")
    try:
        await node.wait_ready()
        for n in range(50):
            await node.create("topics", f"before-{n}", b"{}")
        await peer1.wait_applied(node.revision)
        peer1.kill()
        for n in range(50):  # the majority (node 0 and peer 2) goes on without it
            await node.create("topics", f"during-{n}", b"{}")
        peer1.start()
        state = await peer1.wait_applied(node.revision)
        expected = sorted([f"before-{n}" for n in range(50)] + [f"during-{n}" for n in range(50)])
        assert state["keys"] == expected
        # with peer 2 gone too, writes need the restarted node: it is a full voter again
        peer2.kill()
        rev = await node.create("topics", "after", b"{}")
        assert "after" in (await peer1.wait_applied(rev))["keys"]
    finally:
        await node.close()


async def test_full_restart_keeps_every_committed_write(
    group: tuple[list[str], list[Peer]], tmp_path: Path
) -> None:
    addresses, peers = group
    node = local_node(addresses, tmp_path / "node0")
    await node.wait_ready()
    holder = await node.submit(node.leases.acquire, "sc", "replica-a", "", "")
    for n in range(200):
        await node.create("topics", f"t{n}", b"{}")
    t0 = await node.get("topics", "t0")
    assert t0 is not None
    rev = await node.update("topics", "t0", b'{"v": 2}', expected_revision=t0.revision)
    for peer in peers:
        peer.kill()
    await node.close()

    for peer in peers:
        peer.start()
    node = local_node(addresses, tmp_path / "node0")
    try:
        await node.wait_ready()
        async with asyncio.timeout(20):
            while node.revision < rev:
                await asyncio.sleep(0.05)
        listing = await node.list("topics")
        assert sorted(e.key for e in listing.entries) == sorted(f"t{n}" for n in range(200))
        t0 = await node.get("topics", "t0")
        assert t0 is not None and t0.value == b'{"v": 2}' and t0.revision == rev
        # revisions and epochs go on from where they were
        assert await node.create("topics", "new", b"{}") > rev
        successor = await node.submit(node.leases.transfer, "sc", holder.epoch, "replica-b", "", "")
        assert successor is not None and successor.epoch > holder.epoch
    finally:
        await node.close()
