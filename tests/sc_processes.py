"""SC replicas and SPUs as OS processes on loopback, for tests that start, signal and
restart them one by one.

The command lines are the launcher's own (``ha_sc.cluster.launcher``), so every
member runs exactly as ``ha-sc cluster up`` would run it; but here each process is
a child of the test, started in whatever order the test chooses and ended by its
own PID when the ``LocalCluster`` context exits::

    with LocalCluster(tmp_path, backend="raft", replicas=3, spus=3) as cluster:
        leader, epoch = await cluster.start_all()  # replicas, a leader, SPUs Online
        cluster.replicas[leader].kill()
        new_leader, new_epoch = await cluster.wait_for_leader(above=epoch)
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiohttp

from ha_sc.client import AdminClient, ApiError
from ha_sc.cluster.launcher import plan, replica_args, spu_args
from ha_sc.cluster.probe import probe_replica
from ha_sc.model import (
    CustomSpuSpec,
    Endpoint,
    PartitionResolution,
    SpuResolution,
    TopicReplicas,
    TopicSpec,
)
from ha_sc.spu import STATE_FILE_NAME, read_state
from tests.waiting import WAIT, eventually

POLL = 0.05
STOP_TIMEOUT = 10.0
BECAME_LEADER = re.compile(r"became leader epoch=(\d+)")
SPU_APPLIED = re.compile(
    r"ha_sc\.spu: spu \d+: (?:(?:full sync|synced) at epoch (\d+)|.*\(epoch (\d+)\)$)",
    re.MULTILINE,
)
"""A spec message an SPU applied, with its epoch (a full sync, a resync by cursor, or one
replica change)."""


class Member:
    """One process: its command line, its log, and its PID once started."""

    def __init__(self, name: str, command: list[str], log_path: Path) -> None:
        self.name = name
        self.command = command
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def pid(self) -> int:
        assert self.proc is not None, f"{self.name} was never started"
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        """Start it (again: same command, same data dir, the log appended)."""
        assert not self.alive, f"{self.name} is already running (pid {self.pid})"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        self.starts += 1

    def signal(self, sig: signal.Signals) -> None:
        assert self.alive, f"{self.name} is not running"
        os.kill(self.pid, sig)

    def kill(self) -> None:
        """SIGKILL it if it runs, by its PID, and reap it."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(STOP_TIMEOUT)

    def terminate(self) -> int:
        """SIGTERM, wait for the exit (SIGKILL after the stop timeout); the exit code."""
        assert self.proc is not None
        self.signal(signal.SIGTERM)
        try:
            return self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def log(self, since: int = 0) -> str:
        """The log from byte offset ``since``."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(since)
                return log.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0


class LocalCluster:
    """N SC replicas (``sc-1``...) and M SPUs (ids from 5001) on free loopback ports.

    Nothing starts on construction; on leaving the context every process still
    running is SIGKILLed by its PID (a SIGSTOPped one too) and reaped.
    """

    def __init__(
        self,
        base: Path,
        *,
        backend: str,
        replicas: int = 3,
        spus: int = 3,
        etcd_endpoint: str | None = None,
        etcd_root: str | None = None,
        status_interval: float = 1.0,
        spu_extra: Sequence[str] = (),
        sc_extra: Sequence[str] = (),
    ) -> None:
        """``spu_extra``, ``sc_extra``: more ``ha-sc spu run`` and ``ha-sc sc run``
        arguments for every SPU and every replica."""
        self.base = base
        self.layout = plan(
            None,
            replicas=replicas,
            spus=spus,
            backend=backend,
            etcd_endpoints=[] if etcd_endpoint is None else [etcd_endpoint],
        )
        assert backend != "etcd" or etcd_endpoint is not None, "etcd needs an endpoint"
        self.place()
        extra = ["--status-interval", f"{status_interval:g}", *sc_extra]
        if etcd_root is not None:
            extra += ["--etcd-root", etcd_root]
        logs = base / "logs"
        self.replicas = {
            r.id: Member(
                r.id,
                self.wrap(r.id, replica_args(self.layout, r, base) + extra),
                logs / f"{r.id}.log",
            )
            for r in self.layout.replicas
        }
        self.spus = {
            s.id: Member(
                f"spu-{s.id}",
                self.wrap(f"spu-{s.id}", spu_args(self.layout, s, base) + list(spu_extra)),
                logs / f"spu-{s.id}.log",
            )
            for s in self.layout.spus
        }

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop_all()

    def place(self) -> None:
        """Change the planned addresses before the command lines are made (here: keep
        the free loopback ports ``plan`` chose)."""

    def wrap(self, member: str, argv: list[str]) -> list[str]:
        """The command line that runs ``member`` (here: ``argv`` itself, on this host)."""
        return argv

    def stop_all(self) -> None:
        for member in [*self.spus.values(), *self.replicas.values()]:
            member.kill()

    # addresses and files

    def public(self, replica: str) -> str:
        return next(r.public for r in self.layout.replicas if r.id == replica)

    def private(self, replica: str) -> str:
        return next(r.private for r in self.layout.replicas if r.id == replica)

    def spu_state(self, spu_id: int) -> dict[str, Any]:
        return read_state(self.base / f"spu-{spu_id}" / STATE_FILE_NAME) or {}

    # starting

    def start_replicas(self, *names: str) -> None:
        for name in names or self.replicas:
            self.replicas[name].start()

    def start_spus(self, *ids: int) -> None:
        for spu_id in ids or self.spus:
            self.spus[spu_id].start()

    async def start_all(self) -> tuple[str, int]:
        """Start the replicas; once one leads, register the SPUs and start them; wait until
        every SPU is Online. Returns the leader and its epoch."""
        self.start_replicas()
        leader, epoch = await self.wait_for_leader()
        await self.register_spus()
        self.start_spus()
        await eventually(lambda: self.spus_online(via=leader), what="every SPU Online")
        return leader, epoch

    def assert_no_crash(self) -> None:
        """No member logged a traceback, or a critical failure of its own.

        pysyncobj's CRITICAL "truncating already-applied log entries" is left out: a
        restarted node logs it when the Raft leader resends entries it already holds
        (pysyncobj truncates before comparing); ``caught_up`` checks the caches agree."""
        for member in [*self.replicas.values(), *self.spus.values()]:
            log = member.log()
            assert "Traceback" not in log, f"{member.name}:\n{log}"
            critical = [
                line
                for line in log.splitlines()
                if " CRITICAL " in line and "pysyncobj.syncobj: truncating" not in line
            ]
            assert not critical, f"{member.name}:\n{log}"

    # asking the replicas

    def admin(self, *replicas: str, timeout: float = 10.0) -> AdminClient:
        """A client of the named replicas only (default: all of them)."""
        return AdminClient([self.public(r) for r in replicas or self.replicas], timeout=timeout)

    async def reports(self, names: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
        """``GET /leader`` of each named replica (default: those running) that answers."""
        chosen = [n for n in (names or self.replicas) if self.replicas[n].alive]
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1.0)) as session:
            answers = await asyncio.gather(
                *(probe_replica(session, self.public(n)) for n in chosen)
            )
        return {n: a for n, a in zip(chosen, answers, strict=True) if a is not None}

    async def agreed_leader(
        self, names: Iterable[str] | None = None, *, above: int = 0
    ) -> tuple[str, int] | None:
        """The leader every named running replica answers with, if they all agree, it
        reports itself leader and its epoch is above ``above``."""
        chosen = [n for n in (names or self.replicas) if self.replicas[n].alive]
        reports = await self.reports(chosen)
        if not chosen or len(reports) < len(chosen):
            return None
        seen: set[tuple[str, int] | None] = {
            (r["leader"]["replica_id"], r["leader"]["epoch"]) if r.get("leader") else None
            for r in reports.values()
        }
        named = seen.pop() if len(seen) == 1 else None
        if named is None:
            return None
        leader, epoch = named
        if epoch <= above or reports.get(leader, {}).get("role") != "leader":
            return None
        standbys = [r for n, r in reports.items() if n != leader]
        if any(r["role"] != "standby" for r in standbys):
            return None
        return str(leader), int(epoch)

    async def wait_for_leader(
        self, names: Iterable[str] | None = None, *, above: int = 0, timeout: float = WAIT
    ) -> tuple[str, int]:
        """Until the named running replicas agree on a leader with an epoch above ``above``."""
        chosen = list(names or self.replicas)
        agreed: tuple[str, int] = await eventually(
            lambda: self.agreed_leader(chosen, above=above),
            timeout=timeout,
            what=f"{chosen} agree on a leader above epoch {above}",
        )
        return agreed

    async def caught_up(self, replica: str, leader: str) -> bool:
        """``replica`` is a standby naming ``leader``, its cache at the leader's revision
        and holding the same objects (every spec, status and revision)."""
        reports = await self.reports([replica, leader])
        mine, theirs = reports.get(replica), reports.get(leader)
        return bool(
            mine
            and theirs
            and mine["role"] == "standby"
            and (mine.get("leader") or {}).get("replica_id") == leader
            and mine["revision"] == theirs["revision"]
            and await self.cache_of(replica) == await self.cache_of(leader)
        )

    async def cache_of(self, replica: str) -> list[dict[str, Any]]:
        """Every SPU, topic and partition ``replica`` serves from its cache."""
        async with self.admin(replica, timeout=3.0) as client:
            spus = await client.list_spus()
            topics = await client.list_topics()
            partitions = await client.list_partitions()
        return [
            *(o.model_dump(mode="json") for o in spus),
            *(o.model_dump(mode="json") for o in topics),
            *(o.model_dump(mode="json") for o in partitions),
        ]

    # SPUs and topics through the public API

    async def register_spus(self, *ids: int) -> None:
        """Register the SPUs as custom SPUs, as ``cluster up`` does (no error if known)."""
        async with self.admin() as client:
            for spu in self.layout.spus:
                if ids and spu.id not in ids:
                    continue
                spec = CustomSpuSpec(
                    id=spu.id,
                    public_endpoint=_endpoint(spu.public),
                    private_endpoint=_endpoint(spu.private),
                )
                try:
                    await client.register_spu(spec)
                except ApiError as refused:
                    if refused.status != 409:
                        raise

    async def spus_online(self, ids: Iterable[int] | None = None, *, via: str) -> bool:
        wanted = set(ids or self.spus)
        async with self.admin(via, timeout=2.0) as client:
            spus = await client.list_spus()
        online = {s.spec.id for s in spus if s.status.resolution is SpuResolution.ONLINE}
        return wanted <= online

    async def partitions_online(self, topic: str, count: int, *, via: str) -> bool:
        async with self.admin(via, timeout=2.0) as client:
            partitions = await client.list_partitions(topic)
        return len(partitions) == count and all(
            p.status.resolution is PartitionResolution.ONLINE for p in partitions
        )

    def spus_follow(self, leader: str, epoch: int, ids: Iterable[int] | None = None) -> bool:
        """Every named SPU (default all running) follows ``leader`` at ``epoch``."""
        chosen = [i for i in (ids or self.spus) if self.spus[i].alive]
        states = [self.spu_state(i) for i in chosen]
        return all(
            s.get("sc") == self.private(leader) and s.get("highest_epoch") == epoch for s in states
        )


def computed(partitions: int, replication_factor: int) -> TopicSpec:
    """A topic spec whose replicas the SC places."""
    return TopicSpec(replicas=TopicReplicas.new_computed(partitions, replication_factor))


def applied_epochs(spu_log: str) -> list[int]:
    """The epochs of the spec messages an SPU applied, in the order it applied them."""
    return [int(full or change) for full, change in SPU_APPLIED.findall(spu_log)]


def leader_epochs(sc_log: str) -> list[int]:
    """The epochs an SC replica led, in order, as its log tells."""
    return [int(e) for e in BECAME_LEADER.findall(sc_log)]


def term_ended(sc_log: str, epoch: int) -> bool:
    """The replica's log says its term at ``epoch`` ended (stepped down, resigned, lost)."""
    pattern = rf"stepped down from epoch={epoch}\b|lost leadership of sc epoch={epoch}\b"
    return re.search(pattern, sc_log) is not None


def _endpoint(address: str) -> Endpoint:
    host, port = address.rsplit(":", 1)
    return Endpoint(host=host, port=int(port))
