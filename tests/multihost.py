"""A cluster spread over the hosts of a ``tests.netns.Network``: SC replica i and SPU i
on host i (round robin), each listening on its host's address, and a 3-member etcd
cluster with one member per host.

``HostedCluster`` is ``LocalCluster`` (same command lines, same waits) with the
addresses moved to the hosts and every command run inside its host::

    with Network(3) as net, EtcdCluster(tmp_path / "etcd", net.hosts) as etcd:
        with HostedCluster(tmp_path, net.hosts, backend="etcd", etcd=etcd) as cluster:
            leader, epoch = await cluster.start_all()
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Self

from ha_sc.client import TopicProducer
from tests.etcd_server import ETCD_BINARY, EtcdServer
from tests.netns import Host
from tests.sc_processes import LocalCluster
from tests.waiting import eventually


async def produce(producer: TopicProducer, label: str, count: int = 100) -> list[bytes]:
    """``count`` records; returns their values once every one is acknowledged."""
    values = [b"%s-%d" % (label.encode(), i) for i in range(count)]
    delivered = await (await producer.send_many(values))
    assert sum(d.record_count for d in delivered) == count
    return values


STARTUP_WAIT = 90.0
"""Bound of the waits for a fresh cluster: on the shared 2-core machine, under a load
of 20, an SPU took 18 s from its start to its first log line."""


def _moved(address: str, host: Host) -> str:
    """``address``'s port on ``host``'s address."""
    return f"{host.address}:{address.rsplit(':', 1)[1]}"


class HostedEtcd(EtcdServer):
    """One member of a multi-member etcd cluster, run inside ``host``."""

    def __init__(self, base_dir: Path, host: Host, name: str) -> None:
        super().__init__(base_dir)
        self.host = host
        self.name = name
        self.initial_cluster = ""
        """``name=peer-url,...`` of every member; set by ``EtcdCluster``."""

    @property
    def endpoint(self) -> str:
        return f"{self.host.address}:{self.client_port}"

    @property
    def alive(self) -> bool:
        return self.pid is not None and self._process is not None and self._process.poll() is None

    @property
    def peer_url(self) -> str:
        return f"http://{self.host.address}:{self.peer_port}"

    def _command(self) -> list[str]:
        return self.host.command(
            [
                str(ETCD_BINARY),
                f"--name={self.name}",
                f"--data-dir={self.data_dir}",
                f"--listen-client-urls={self.url}",
                f"--advertise-client-urls={self.url}",
                f"--listen-peer-urls={self.peer_url}",
                f"--initial-advertise-peer-urls={self.peer_url}",
                f"--initial-cluster={self.initial_cluster}",
                "--initial-cluster-state=new",
                "--heartbeat-interval=50",
                "--election-timeout=500",
            ]
        )


class EtcdCluster:
    """One etcd member per host, started together (a member is healthy only once a
    majority runs); every member is stopped on leaving the context."""

    def __init__(self, base: Path, hosts: Sequence[Host]) -> None:
        self.members = [
            HostedEtcd(base / f"etcd-{i}", host, f"etcd-{i}") for i, host in enumerate(hosts, 1)
        ]
        everyone = ",".join(f"{m.name}={m.peer_url}" for m in self.members)
        for member in self.members:
            member.initial_cluster = everyone

    @property
    def endpoints(self) -> list[str]:
        return [m.endpoint for m in self.members]

    def __enter__(self) -> Self:
        try:
            with ThreadPoolExecutor(len(self.members)) as pool:
                for started in [pool.submit(m.start) for m in self.members]:
                    started.result()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        for member in self.members:
            member.kill()

    def leader(self) -> HostedEtcd:
        """The member that leads the etcd cluster now (each running member is asked)."""
        for member in self.members:
            if not member.alive:
                continue
            status = json.loads(member.etcdctl("endpoint", "status", "-w", "json"))[0]["Status"]
            if status["leader"] == status["header"]["member_id"]:
                return member
        raise AssertionError("no etcd member says it leads")

    def restart(self, *members: HostedEtcd) -> None:
        """Start the given (stopped) members together and wait until each is healthy."""
        with ThreadPoolExecutor(len(members)) as pool:
            for started in [pool.submit(m.start) for m in members]:
                started.result()


class HostedCluster(LocalCluster):
    """``LocalCluster`` with replica i and SPU i on ``hosts[i % len(hosts)]``."""

    def __init__(
        self,
        base: Path,
        hosts: Sequence[Host],
        *,
        backend: str,
        etcd: EtcdCluster | None = None,
        replicas: int = 3,
        spus: int = 3,
    ) -> None:
        self.hosts = list(hosts)
        self._etcd_endpoints = [] if etcd is None else etcd.endpoints
        self.where: dict[str, Host] = {}
        """The host of each member (replica id, ``spu-<id>``)."""
        super().__init__(
            base,
            backend=backend,
            replicas=replicas,
            spus=spus,
            etcd_endpoint=self._etcd_endpoints[0] if self._etcd_endpoints else None,
            etcd_root="/ha-sc/",
        )

    def place(self) -> None:
        for index, replica in enumerate(self.layout.replicas):
            host = self.hosts[index % len(self.hosts)]
            self.where[replica.id] = host
            replica.public = _moved(replica.public, host)
            replica.private = _moved(replica.private, host)
            if replica.raft:
                replica.raft = _moved(replica.raft, host)
        for index, spu in enumerate(self.layout.spus):
            host = self.hosts[index % len(self.hosts)]
            self.where[f"spu-{spu.id}"] = host
            spu.public = _moved(spu.public, host)
            spu.private = _moved(spu.private, host)
            spu.metrics = _moved(spu.metrics, host)
        if self.layout.etcd is not None:
            self.layout.etcd.endpoints = list(self._etcd_endpoints)

    def wrap(self, member: str, argv: list[str]) -> list[str]:
        return self.where[member].command(argv)

    async def start_all(self) -> tuple[str, int]:
        """``LocalCluster.start_all``, the SPUs given ``STARTUP_WAIT`` to come Online."""
        self.start_replicas()
        leader, epoch = await self.wait_for_leader(timeout=STARTUP_WAIT)
        await self.register_spus()
        self.start_spus()
        await eventually(
            lambda: self.spus_online(via=leader), timeout=STARTUP_WAIT, what="every SPU Online"
        )
        return leader, epoch

    def on(self, host: Host) -> tuple[list[str], list[int]]:
        """The replicas and SPU ids that run on ``host``."""
        replicas = [r for r in self.replicas if self.where[r] is host]
        spus = [s for s in self.spus if self.where[f"spu-{s}"] is host]
        return replicas, spus
