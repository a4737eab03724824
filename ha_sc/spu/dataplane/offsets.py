"""The offsets the SPU reports to the SC, read from its hosted replicas.

A replica the data plane has not loaded yet (just added, its log being opened)
reports its checkpointed high watermark as both LEO and HW: a lower bound, so the SC
never takes it for further along than it is.
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
        leads = replica.role is ReplicaRole.LEADER
        if hosted is None or not hosted.loaded:
            hw = self._checkpoint(replica.partition)
            return ReplicaOffsets(leo=hw, hw=hw, lsr=0 if leads else None)
        self._checkpoints.pop(replica.partition, None)
        offsets = hosted.replica
        lsr = None
        if leads:
            lsr = hosted.leadership.lsr if hosted.leadership is not None else 0
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
