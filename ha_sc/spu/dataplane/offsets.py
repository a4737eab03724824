"""The offsets the SPU reports to the SC, read from its hosted replicas.

A replica the data plane has not loaded yet (just added, its log being opened)
reports its checkpointed high watermark as both LEO and HW: a lower bound, so the SC
never takes it for further along than it is. As a leader it reports no ``lsr``: its
in-sync set is not known before it leads (the SC keeps what it stored; a new partition
is stored with every follower in sync, as the leader takes them once it leads). A 0
there made the SC write the partition twice more while a store filled: ``lsr`` 0 from
a report built between the table's and the registry's update, then back.
"""

from __future__ import annotations

from pathlib import Path

from ha_sc.spu.dataplane.registry import ReplicaRegistry
from ha_sc.spu.replica_status import ReplicaOffsets
from ha_sc.spu.replica_table import LocalReplica, ReplicaRole
from ha_sc.spu.storage.checkpoint import read_hw


class HostedOffsets:
    """The ``OffsetSource`` of an SPU with a data plane."""

    def __init__(self, registry: ReplicaRegistry, logs_dir: Path) -> None:
        self._registry = registry
        self._logs_dir = logs_dir
        self._checkpoints: dict[str, int] = {}

    def offsets(self, replica: LocalReplica) -> ReplicaOffsets:
        hosted = self._registry.get(replica.partition)
        if hosted is None or not hosted.loaded:
            hw = self._checkpoint(replica.partition)
            return ReplicaOffsets(leo=hw, hw=hw)
        self._checkpoints.pop(replica.partition, None)
        offsets = hosted.replica
        leadership = hosted.leadership if replica.role is ReplicaRole.LEADER else None
        lsr = leadership.lsr if leadership is not None else None  # None: not leading yet
        return ReplicaOffsets(leo=offsets.leo, hw=offsets.hw, lsr=lsr)

    def moved(self) -> set[str]:
        """Replicas whose LEO, HW, role or in-sync set changed since the last call."""
        moved = set(self._registry.offsets_moved)
        self._registry.offsets_moved.clear()
        return moved

    def _checkpoint(self, key: str) -> int:
        hw = self._checkpoints.get(key)
        if hw is None:
            hw = self._checkpoints[key] = read_hw(self._logs_dir / key) or 0
        return hw
