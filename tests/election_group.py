"""A group of election candidates, each its own OS process, and what they report."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaos.proxy import FaultProxy
from tests.net import free_addresses
from tests.waiting import eventually

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Member:
    name: str
    args: list[str]
    data_dir: Path
    raft_address: str = ""
    proc: subprocess.Popen[bytes] | None = None
    proxies: list[FaultProxy] = field(default_factory=list)
    """Proxies on the Raft links that touch this member."""

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, sig)


class ElectionGroup:
    """Starts, signals and reads the candidates; ends only the processes it started."""

    def __init__(
        self, backend: str, base_dir: Path, size: int = 3, *, etcd: str = "", root: str = "/ha-sc/"
    ) -> None:
        self.backend = backend
        self.base_dir = base_dir
        self.events_path = base_dir / "events.jsonl"
        self.size = size
        self.etcd = etcd
        self.root = root
        self.members: list[Member] = []
        self._proxies: list[FaultProxy] = []

    async def start(self, *, proxied: bool = False) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        names = [f"c{i + 1}" for i in range(self.size)]
        if self.backend == "raft":
            addresses = free_addresses(self.size)
            dial: dict[tuple[str, str], str] = {}
            if proxied:
                await self._start_proxies(addresses, dial)
            for name, address in zip(names, addresses, strict=True):
                peers = [
                    f"{other}@{dial[(address, other)]}" if (address, other) in dial else other
                    for other in addresses
                    if other != address
                ]
                args = ["--raft-self", address, "--data-dir", str(self.base_dir / name)]
                for peer in peers:
                    args += ["--raft-peer", peer]
                member = Member(name, args, self.base_dir / name, raft_address=address)
                member.proxies = [p for p in self._proxies if address in p.name.split("|")]
                self.members.append(member)
        else:
            for name in names:
                args = ["--etcd", self.etcd, "--root", self.root]
                self.members.append(Member(name, args, self.base_dir / name))
        for member in self.members:
            self.launch(member)
        await self.wait_for(lambda evs: sum(e["event"] == "ready" for e in evs) >= self.size)

    async def _start_proxies(self, addresses: list[str], dial: dict[tuple[str, str], str]) -> None:
        # pysyncobj: of two nodes, the one with the greater address dials the other
        for a in addresses:
            for b in addresses:
                if a > b:
                    proxy = FaultProxy(b, name=f"{a}|{b}")
                    await proxy.start()
                    self._proxies.append(proxy)
                    dial[(a, b)] = proxy.address

    def launch(self, member: Member) -> None:
        member.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable,
            "-m",
            "tests.candidate_proc",
            "--backend",
            self.backend,
            "--name",
            member.name,
            "--events",
            str(self.events_path),
            *member.args,
        ]
        with (member.data_dir / "candidate.log").open("ab") as log:
            member.proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)

    async def restart(self, *members: Member) -> None:
        """Start these members again (with their data dirs) and wait until all are ready."""
        before = len(self.events())
        for member in members:
            self.launch(member)
        names = {m.name for m in members}
        await self.wait_for(
            lambda evs: names <= {e["name"] for e in evs[before:] if e["event"] == "ready"}
        )

    def events(self) -> list[dict[str, Any]]:
        try:
            lines = self.events_path.read_text().splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            try:
                out.append(json.loads(line))
            except ValueError:
                break  # a line being written right now
        return out

    async def wait_for(self, condition: Any, timeout: float = 30.0) -> list[dict[str, Any]]:
        def met() -> list[dict[str, Any]] | None:
            events = self.events()
            return events if condition(events) else None

        try:
            return await eventually(met, timeout=timeout, interval=0.01, what=str(condition))
        except AssertionError:
            tail = "\n".join(json.dumps(e) for e in self.events()[-15:])
            raise TimeoutError(
                f"condition not met in {timeout:.0f}s; last events:\n{tail}"
            ) from None

    async def wait_won(
        self, *, after: float = 0.0, exclude: str = "", timeout: float = 30.0
    ) -> dict[str, Any]:
        events = await self.wait_for(
            lambda evs: any(_won_by_other(e, after, exclude) for e in evs), timeout
        )
        return next(e for e in events if _won_by_other(e, after, exclude))

    def leaders(self) -> list[str]:
        """Living members whose current run's last won/lost event is a won."""
        state: dict[str, str] = {}
        for event in self.events():
            if event["event"] in ("ready", "won", "lost", "resigned"):
                state[event["name"]] = event["event"]
        alive = {m.name for m in self.members if m.alive}
        return [name for name, last in state.items() if last == "won" and name in alive]

    def member(self, name: str) -> Member:
        return next(m for m in self.members if m.name == name)

    async def stop(self) -> None:
        for member in self.members:
            if member.alive:
                with_suppress_kill(member)
        for proxy in self._proxies:
            await proxy.close()


def _won_by_other(event: dict[str, Any], after: float, exclude: str) -> bool:
    return event["event"] == "won" and event["ts"] > after and event["name"] != exclude


def with_suppress_kill(member: Member) -> None:
    assert member.proc is not None
    try:
        os.kill(member.proc.pid, signal.SIGCONT)
        os.kill(member.proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    member.proc.wait(10)


def terms(events: list[dict[str, Any]]) -> list[tuple[str, int, float, float]]:
    """(name, epoch, won_ts, end_ts) of every term; end is inf while still held."""
    open_terms: dict[str, tuple[int, float]] = {}
    out: list[tuple[str, int, float, float]] = []
    for event in events:
        name = event["name"]
        if event["event"] == "won":
            open_terms[name] = (event["epoch"], event["ts"])
        elif event["event"] in ("lost", "resigned") and name in open_terms:
            epoch, won = open_terms.pop(name)
            out.append((name, epoch, won, event.get("ended", event["ts"])))
    out += [(name, epoch, won, float("inf")) for name, (epoch, won) in open_terms.items()]
    return sorted(out, key=lambda t: t[2])
