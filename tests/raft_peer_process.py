"""A handle on a Raft KV node running as its own OS process (``tests.raft_peer``): start,
kill, freeze, and read what it reports having applied."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from ha_sc.kv.raft import RaftKv
from tests.waiting import eventually

REPO = Path(__file__).resolve().parents[1]


class PeerProcess:
    """A Raft KV node in its own process (tests.raft_peer); stopped only by its own PID."""

    def __init__(
        self, address: str, peers: list[str], data_dir: Path, *, kind: str = "topics"
    ) -> None:
        self.address = address
        self.peers = peers
        self.data_dir = data_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self.options: list[str] = ["--kind", kind]
        """Command-line options of tests.raft_peer besides its addresses and data dir."""

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
                    *self.options,
                ],
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)  # a frozen one too
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None and self.proc.poll() is None
        os.kill(self.proc.pid, sig)

    def log_text(self) -> str:
        """What the process has written to its log (peer.log in its data dir)."""
        try:
            return (self.data_dir / "peer.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def applied(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads((self.data_dir / "applied.json").read_text())
        except (FileNotFoundError, ValueError):
            return {"revision": 0, "keys": [], "ready": False}
        return data

    async def wait_applied(self, revision: int, timeout: float = 20.0) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            state = self.applied()
            return state if state["revision"] >= revision else None

        return await eventually(
            reached, timeout=timeout, interval=0.05, what=f"{self.address} applied {revision}"
        )

    async def fingerprint_at(self, revision: int, timeout: float = 30.0) -> list[Any]:
        """Its fingerprint (revision, objects digest, sessions digest) once at ``revision``."""

        def reached() -> list[Any] | None:
            fingerprint = self.applied().get("fingerprint")
            return (
                list(fingerprint)
                if fingerprint is not None and fingerprint[0] >= revision
                else None
            )

        return await eventually(
            reached,
            timeout=timeout,
            interval=0.05,
            what=f"{self.address} fingerprint at {revision}",
        )


async def new_leader(node: RaftKv, old: str | None, timeout: float = 60.0) -> str:
    """Wait until ``node`` knows of a Raft leader other than ``old``."""

    def other() -> str | None:
        leader = node.raft_leader()
        return leader if leader != old else None

    return await eventually(other, timeout=timeout, what=f"a Raft leader other than {old}")


async def depose_leader(
    node: RaftKv, peers: list[PeerProcess], *, kill: bool, frozen_for: float
) -> str:
    """Depose the current Raft leader and wait for the next; returns how. The in-process
    ``node`` hands leadership over; a peer is SIGKILLed and restarted (``kill``), or
    frozen (SIGSTOP) until another leads, ``frozen_for`` more seconds, then SIGCONT."""
    by_address = {peer.address: peer for peer in peers}
    leader = await new_leader(node, None)
    if leader == node.address:
        await node.hand_over_leadership(timeout=30)
        how = "hand-over"
    elif kill:
        by_address[leader].kill()
        await new_leader(node, leader)
        by_address[leader].start()
        how = "SIGKILL + restart"
    else:
        by_address[leader].signal(signal.SIGSTOP)
        await new_leader(node, leader)
        await asyncio.sleep(frozen_for)  # the frozen one misses entries meanwhile
        by_address[leader].signal(signal.SIGCONT)
        how = f"SIGSTOP + {frozen_for:g} s + SIGCONT"
    await new_leader(node, leader)
    return how
