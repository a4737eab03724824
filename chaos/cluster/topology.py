"""A cluster for one chaos run: etcd (etcd backend), SC replicas and SPUs as processes
on loopback, with a fault-injecting proxy on every link that can be cut.

Driven only from outside: members are started through the ``ha-sc`` command line,
observed through the SC's public API (``GET /leader``, the admin client) and the
files they write, and ended by their own PIDs. Proxied links (``links.py``):

- SC -> KV: each replica reaches etcd through its own proxy.
- SC <-> SC: each pair of Raft nodes through one proxy (pysyncobj keeps one connection
  per pair, dialled by the node with the greater address: ``--raft-peer ADDR@PROXY``).
- SPU -> SC: each SPU has a proxy per replica, given as ``--sc-private ADDR@PROXY`` so the
  SPU dials the proxy whenever it means that replica (redirects included).
- clients -> SPU and SPU -> SPU: each SPU is registered with proxy endpoints.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from chaos.cluster.links import (
    Links,
    client_link,
    kv_link,
    raft_link,
    replication_link,
    sc_link,
)
from chaos.cluster.member import Member
from chaos.cluster.ports import Ports
from chaos.history.leader_reports import leader_report
from ha_sc.client import AdminClient, ApiError, CustomSpuSpec, Endpoint, SpuResolution

log = logging.getLogger("chaos.cluster")

ETCD_BINARY = Path("/usr/bin/etcd")
FIRST_SPU_ID = 5001
START_TIMEOUT = 40.0
POLL = 0.05


@dataclass(frozen=True, slots=True)
class Shape:
    """What to run."""

    backend: str = "raft"
    replicas: int = 3
    spus: int = 3


class ChaosCluster:
    """Nothing runs until ``start``; ``stop`` ends every member and closes every proxy."""

    def __init__(self, directory: Path, shape: Shape) -> None:
        if shape.backend not in ("raft", "etcd"):
            raise ValueError(f"backend {shape.backend!r}: raft or etcd")
        self.directory = directory
        self.shape = shape
        self._ports = Ports()
        self.links = Links(self._ports)
        self.replicas: dict[str, Member] = {}
        self.spus: dict[int, Member] = {}
        self.etcd: Member | None = None
        self.public: dict[str, str] = {}
        self.private: dict[str, str] = {}
        self._raft: dict[str, str] = {}
        self._spu_addresses: dict[int, tuple[str, str]] = {}
        self._etcd_url = ""

    # addresses and files

    def data_dir(self, member: str) -> Path:
        return self.directory / "data" / member

    def log_path(self, member: str) -> Path:
        return self.directory / "logs" / f"{member}.log"

    def spu_data_dir(self, spu: int) -> Path:
        return self.data_dir(f"spu-{spu}")

    @property
    def members(self) -> list[Member]:
        return [*self.spus.values(), *self.replicas.values(), *([self.etcd] if self.etcd else [])]

    def admin(self, timeout: float = 5.0) -> AdminClient:
        """A client of every replica's public API (the client library's own failover)."""
        return AdminClient(list(self.public.values()), timeout=timeout)

    # bring up and down

    async def start(self) -> None:
        """Proxies, etcd, the replicas; once one leads, register and start the SPUs and
        wait until every SPU is Online."""
        names = [f"sc-{i + 1}" for i in range(self.shape.replicas)]
        for name in names:
            self.public[name], self.private[name] = self._ports.address(), self._ports.address()
        if self.shape.backend == "etcd":
            await self._start_etcd()
        else:
            self._raft = {name: self._ports.address() for name in names}
        for name in names:
            self.replicas[name] = Member(
                name, await self._replica_command(name), self.log_path(name)
            )
        for i in range(self.shape.spus):
            spu = FIRST_SPU_ID + i
            self._spu_addresses[spu] = (self._ports.address(), self._ports.address())
            self.spus[spu] = Member(
                f"spu-{spu}", await self._spu_command(spu), self.log_path(f"spu-{spu}")
            )
        self._ports.release([*self.public.values(), *self.private.values(), *self._raft.values()])
        for member in self.replicas.values():
            member.start()
        await self.wait_for_leader(timeout=START_TIMEOUT)
        await self._register_spus()
        self._ports.release([a for pair in self._spu_addresses.values() for a in pair])
        for member in self.spus.values():
            member.start()
        await self.wait_spus_online(timeout=START_TIMEOUT)

    async def stop(self) -> None:
        """SIGKILL every member still running (by PID), then close the proxies."""
        self._ports.release()
        await asyncio.gather(*(m.kill() for m in self.members), return_exceptions=True)
        await self.links.close()

    @property
    def etcd_client_address(self) -> str:
        """etcd's own client address (the replicas reach it through their proxies)."""
        return self._etcd_url.removeprefix("http://")

    async def _start_etcd(self) -> None:
        client, peer = self._ports.address(), self._ports.address()
        self._etcd_url = f"http://{client}"
        self.etcd = Member(
            "etcd", _etcd_command(self.data_dir("etcd"), client, peer), self.log_path("etcd")
        )
        self._ports.release([client, peer])
        self.etcd.start()
        await self.wait_etcd_healthy()
        for name in self.public:
            await self.links.add(kv_link(name), client)

    async def wait_etcd_healthy(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1.0)) as session:
            while time.monotonic() < deadline:
                try:
                    async with session.get(f"{self._etcd_url}/health") as response:
                        if b'"true"' in await response.read():
                            return
                except (aiohttp.ClientError, TimeoutError):
                    pass
                await asyncio.sleep(POLL)
        raise TimeoutError(f"etcd at {self._etcd_url} not healthy within {timeout:g} s")

    async def _replica_command(self, name: str) -> list[str]:
        args = [
            "sc", "run",
            "--id", name,
            "--backend", self.shape.backend,
            "--data-dir", str(self.data_dir(name)),
            "--public-address", self.public[name],
            "--private-address", self.private[name],
            "--status-interval", "1",
        ]  # fmt: skip
        if self.shape.backend == "etcd":
            args += ["--etcd-endpoint", self.links[kv_link(name)].address]
        else:
            args += ["--raft-address", self._raft[name]]
            for other, address in self._raft.items():
                if other == name:
                    continue
                # of two pysyncobj nodes, the one with the greater address dials the other
                if self._raft[name] > address:
                    link = raft_link(name, other)
                    proxy = (
                        self.links[link]
                        if link in self.links
                        else await self.links.add(link, address)
                    )
                    args += ["--raft-peer", f"{address}@{proxy.address}"]
                else:
                    args += ["--raft-peer", address]
        return _ha_sc(*args)

    async def _spu_command(self, spu: int) -> list[str]:
        public, private = self._spu_addresses[spu]
        await self.links.add(client_link(spu), public)
        await self.links.add(replication_link(spu), private)
        args = [
            "spu", "run",
            "--id", str(spu),
            "--public", public,
            "--private", private,
            "--data-dir", str(self.spu_data_dir(spu)),
        ]  # fmt: skip
        for name, address in self.private.items():
            proxy = await self.links.add(sc_link(spu, name), address)
            args += ["--sc-private", f"{address}@{proxy.address}"]
        return _ha_sc(*args)

    async def _register_spus(self) -> None:
        async with self.admin(timeout=10.0) as client:
            for spu in self.spus:
                spec = CustomSpuSpec(
                    id=spu,
                    public_endpoint=_endpoint(self.links[client_link(spu)].address),
                    private_endpoint=_endpoint(self.links[replication_link(spu)].address),
                )
                try:
                    await client.register_spu(spec)
                except ApiError as refused:
                    if refused.status != 409:
                        raise

    # asking the replicas

    async def reports(self) -> dict[str, dict[str, Any] | None]:
        """``GET /leader`` of every replica (None: no answer within 0.5 s)."""
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=0.5)) as session:
            answers = await asyncio.gather(
                *(leader_report(session, a) for a in self.public.values())
            )
        return dict(zip(self.public, answers, strict=True))

    async def leader(self, *, above: int = 0, everyone: bool = True) -> tuple[str, int] | None:
        """The replica that says it leads under the highest epoch claimed, if that epoch
        is above ``above`` and the other replicas name it: every answering replica
        (``everyone``), or with itself a majority of the set (while a partition or a
        paused replica keeps some of them behind)."""
        reports = {n: r for n, r in (await self.reports()).items() if r is not None}
        claims = [
            (int((r.get("leader") or {}).get("epoch") or 0), n)
            for n, r in reports.items()
            if r.get("role") == "leader"
        ]
        if not claims:
            return None
        epoch, name = max(claims)
        if epoch <= above:
            return None
        naming = [
            n
            for n, r in reports.items()
            if (r.get("leader") or {}).get("replica_id") == name
            and (r.get("leader") or {}).get("epoch") == epoch
        ]
        enough = len(reports) if everyone else len(self.public) // 2 + 1
        return (name, epoch) if len(naming) >= enough else None

    async def wait_for_leader(
        self, *, above: int = 0, everyone: bool = True, timeout: float = 30.0
    ) -> tuple[str, int]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = await self.leader(above=above, everyone=everyone)
            if found is not None:
                return found
            await asyncio.sleep(POLL)
        raise TimeoutError(f"no agreed SC leader above epoch {above} within {timeout:g} s")

    async def spus_online(self) -> bool:
        try:
            async with self.admin(timeout=2.0) as client:
                spus = await client.list_spus()
        except (ApiError, OSError, aiohttp.ClientError, TimeoutError):
            return False
        online = {s.spec.id for s in spus if s.status.resolution is SpuResolution.ONLINE}
        return {i for i, m in self.spus.items() if m.alive} <= online

    async def wait_spus_online(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await self.spus_online():
                return
            await asyncio.sleep(POLL * 4)
        raise TimeoutError(f"not every running SPU Online within {timeout:g} s")


def _etcd_command(data_dir: Path, client: str, peer: str) -> list[str]:
    if not ETCD_BINARY.exists():
        raise FileNotFoundError(f"{ETCD_BINARY} not found: install etcd-server")
    return [
        str(ETCD_BINARY),
        "--name=chaos",
        f"--data-dir={data_dir}",
        f"--listen-client-urls=http://{client}",
        f"--advertise-client-urls=http://{client}",
        f"--listen-peer-urls=http://{peer}",
        f"--initial-advertise-peer-urls=http://{peer}",
        f"--initial-cluster=chaos=http://{peer}",
        "--initial-cluster-state=new",
        "--heartbeat-interval=50",
        "--election-timeout=500",
    ]


def _ha_sc(*args: str) -> list[str]:
    return [sys.executable, "-m", "ha_sc.cli", *args]


def _endpoint(address: str) -> Endpoint:
    host, port = address.rsplit(":", 1)
    return Endpoint(host=host, port=int(port))
