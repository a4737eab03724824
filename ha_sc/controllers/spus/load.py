"""How much of the cluster each SPU already carries, for least-loaded placement."""

from collections.abc import Iterable, Mapping
from typing import TypeAlias

from ha_sc.model.kinds import Partition

SpuLoad: TypeAlias = Mapping[int, tuple[int, int]]
"""SPU id -> (partitions it leads, replicas it holds, leader replicas included)."""


def spu_load(partitions: Iterable[Partition]) -> dict[int, tuple[int, int]]:
    """Count, per SPU, the partitions it leads and the replicas it holds.

    Counted from the partition specs (the desired placement), so a replica counts
    for its SPU whether or not that SPU is online.
    """
    led: dict[int, int] = {}
    held: dict[int, int] = {}
    for partition in partitions:
        led[partition.spec.leader] = led.get(partition.spec.leader, 0) + 1
        for spu in partition.spec.replicas:
            held[spu] = held.get(spu, 0) + 1
    return {spu: (led.get(spu, 0), count) for spu, count in sorted(held.items())}
