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
    return StatusReporter().next_report(table, source)


class StatusReporter:
    """Builds one session's reports: full first, then only what changed."""

    def __init__(self) -> None:
        self._sent: dict[str, ReplicaOffsets] | None = None

    def next_report(self, table: ReplicaTable, source: OffsetSource) -> StatusReport:
        current = {r.partition: source.offsets(r) for r in table.replicas()}
        sent = self._sent
        self._sent = current
        if sent is None:
            changed, removed = current, []
        else:
            changed = {p: o for p, o in current.items() if sent.get(p) != o}
            removed = [p for p in sent if p not in current]
        return StatusReport(
            spu_id=table.spu_id,
            replicas=[
                ReplicaReport(partition=p, leo=o.leo, hw=o.hw, lsr=o.lsr)
                for p, o in changed.items()
            ],
            full=sent is None,
            removed=removed,
        )
