"""The seam between the replicas the SC assigned and the logs that hold their data.

The control plane asks an ``OffsetSource`` for each local replica's offsets
when it builds a status report. Until the data plane exists, ``NoLogs``
reports every replica empty (LEO 0, HW 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ha_sc.protocol import ReplicaReport, StatusReport
from ha_sc.spu.replica_table import LocalReplica, ReplicaRole, ReplicaTable


@dataclass(frozen=True, slots=True)
class ReplicaOffsets:
    leo: int = 0
    """Log end offset."""
    hw: int = 0
    """High watermark."""
    lsr: int | None = None
    """Followers in sync, known to a leader only."""


class OffsetSource(Protocol):
    def offsets(self, replica: LocalReplica) -> ReplicaOffsets: ...


class NoLogs:
    """Offsets before the data plane: every replica is empty."""

    def offsets(self, replica: LocalReplica) -> ReplicaOffsets:
        if replica.role is ReplicaRole.LEADER:
            return ReplicaOffsets(lsr=0)
        return ReplicaOffsets()


def status_report(table: ReplicaTable, source: OffsetSource) -> StatusReport:
    """The status report of every replica in ``table``."""
    reports = []
    for replica in table.replicas():
        offsets = source.offsets(replica)
        reports.append(
            ReplicaReport(
                partition=replica.partition, leo=offsets.leo, hw=offsets.hw, lsr=offsets.lsr
            )
        )
    return StatusReport(spu_id=table.spu_id, replicas=reports)
