"""Before ``cluster up`` starts anything: every port a member about to start will
listen on must be free, else it says which port, which member, and who holds it."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

from ha_sc.cluster.layout import ClusterLayout
from ha_sc.cluster.port_holders import Holder, can_listen, holder
from ha_sc.cluster.processes import is_running


@dataclass(frozen=True)
class Listener:
    address: str
    """host:port."""
    what: str
    """Which member and which of its ports, in words."""

    @property
    def host(self) -> str:
        return self.address.rsplit(":", 1)[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.address.rsplit(":", 1)[1])


def listeners(layout: ClusterLayout, *, started: Collection[str] = ()) -> list[Listener]:
    """Every address a member of ``layout`` that is not running will listen on (a
    running member holds its own). ``started``: member names to count as running."""
    found: list[Listener] = []
    etcd = layout.etcd
    if etcd is not None and etcd.managed and not is_running(etcd.pid, "etcd"):
        found.append(Listener(etcd.endpoints[0], "client port of the local etcd"))
        if etcd.peer:
            found.append(Listener(etcd.peer, "peer port of the local etcd"))
    for r in layout.replicas:
        if r.id in started or is_running(r.pid):
            continue
        found.append(Listener(r.public, f"public API of SC replica {r.id}"))
        found.append(Listener(r.private, f"private (SPU) port of SC replica {r.id}"))
        if r.raft:
            found.append(Listener(r.raft, f"Raft port of SC replica {r.id}"))
    for s in layout.spus:
        if is_running(s.pid):
            continue
        found.append(Listener(s.public, f"public port of SPU {s.id}"))
        found.append(Listener(s.private, f"private port of SPU {s.id}"))
        if s.metrics:
            found.append(Listener(s.metrics, f"metrics port of SPU {s.id}"))
    return found


@dataclass(frozen=True)
class Taken:
    listener: Listener
    holder: Holder | None

    def __str__(self) -> str:
        who = f"held by {self.holder}" if self.holder is not None else "in use"
        return f"port {self.listener.port} ({self.listener.what}) is {who}"


class PortsTaken(Exception):
    """Ports a member needs are taken; nothing was started."""

    def __init__(self, taken: list[Taken]) -> None:
        self.taken = taken
        lines = "\n  ".join(str(t) for t in taken)
        super().__init__(
            f"cannot start the cluster, nothing was started:\n  {lines}\n"
            "free these ports (or `cluster down` the cluster that holds them) and run "
            "`cluster up` again"
        )


def taken_ports(
    wanted: list[Listener], is_free: Callable[[str, int], bool] = can_listen
) -> list[Taken]:
    return [Taken(w, holder(w.port)) for w in wanted if not is_free(w.host, w.port)]


def check_free(layout: ClusterLayout) -> None:
    """Raises PortsTaken when any port of a member to start is taken."""
    taken = taken_ports(listeners(layout))
    if taken:
        raise PortsTaken(taken)
