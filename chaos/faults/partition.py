"""Partitions of the SC replica set on the links between replicas.

On Raft the replicas' links are the Raft peer links; a partition blackholes every
link between two groups (both directions, new connections left unaccepted):
``isolated`` cuts one replica from the rest (a leader in the minority), ``split``
any grouping, ``bridge`` two sides that only one replica still joins.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from chaos.cluster.links import Links
from chaos.proxy import Direction, FaultProxy


@dataclass(eq=False)
class Partition:
    links: Links
    groups: list[frozenset[str]]
    name: str = "partition"

    @property
    def target(self) -> str:
        return " | ".join(",".join(sorted(g)) for g in self.groups)

    @property
    def cut(self) -> list[FaultProxy]:
        proxies: dict[str, FaultProxy] = {}
        for i, side in enumerate(self.groups):
            for other in self.groups[i + 1 :]:
                for proxy in self.links.raft_between(side, other):
                    proxies[proxy.name] = proxy
        return list(proxies.values())

    async def inject(self) -> None:
        for proxy in self.cut:
            proxy.blackhole(Direction.BOTH)

    async def heal(self) -> None:
        for proxy in self.cut:
            proxy.heal()


def isolated(links: Links, replica: str, replicas: Iterable[str]) -> Partition:
    """``replica`` alone on one side, every other replica on the other."""
    rest = frozenset(r for r in replicas if r != replica)
    return Partition(links, [frozenset({replica}), rest], name="isolate")


def bridge(links: Links, left: Iterable[str], right: Iterable[str], middle: str) -> Partition:
    """``left`` and ``right`` cut from each other; ``middle`` still talks to both."""
    partition = Partition(links, [frozenset(left), frozenset(right)], name="bridge")
    if middle in partition.groups[0] | partition.groups[1]:
        raise ValueError(f"the bridge {middle} must be on neither side")
    return partition
