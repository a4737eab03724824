"""The seam between the replicas the SC assigned and the logs that hold their data.

The control plane asks an ``OffsetSource`` for each local replica's offsets
when it builds a status report. ``NoLogs`` (an SPU without a data plane) reports
every replica empty (LEO 0, HW 0).

A session's first report is full; the next ones carry what changed. An SPU holds
tens of thousands of replicas, and comparing every one each 0.3 s cost it most of a
core, so a report looks only at the replicas the table changed and those whose
offsets the source says may have moved; every ``SWEEP_EVERY`` reports it compares
them all, in case a move went unsaid.
"""

from __future__ import annotations

from collections.abc import Sequence
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


SWEEP_EVERY = 30
"""Every this many reports (9 s at 0.3 s), every replica is compared."""


class OffsetSource(Protocol):
    def offsets(self, replica: LocalReplica) -> ReplicaOffsets: ...

    def moved(self) -> set[str] | None:
        """Partitions whose offsets may have changed since the last call (forgotten as
        they are returned); None when the source cannot tell, so every one is compared."""
        ...


class NoLogs:
    """Offsets before the data plane: every replica is empty."""

    def offsets(self, replica: LocalReplica) -> ReplicaOffsets:
        if replica.role is ReplicaRole.LEADER:
            return ReplicaOffsets(lsr=0)
        return ReplicaOffsets()

    def moved(self) -> set[str]:
        return set()  # the offsets follow the role alone, which the table tracks


def status_report(table: ReplicaTable, source: OffsetSource) -> StatusReport:
    """The status report of every replica in ``table``."""
    return StatusReporter().next_report(table, source)


class StatusReporter:
    """Builds one session's reports: full first, then only what changed."""

    def __init__(self, *, sweep_every: int = SWEEP_EVERY) -> None:
        self._sent: dict[str, ReplicaOffsets] | None = None
        self._sweep_every = sweep_every
        self._reports = 0

    def next_report(self, table: ReplicaTable, source: OffsetSource) -> StatusReport:
        touched = table.take_touched()
        moved = source.moved()
        sent = self._sent
        self._reports += 1
        if sent is None:
            self._sent = {r.partition: source.offsets(r) for r in table.replicas()}
            return _report(table.spu_id, self._sent, full=True)
        if moved is None or self._reports % self._sweep_every == 0:
            keys: set[str] = set(sent).union(r.partition for r in table.replicas())
        else:
            keys = touched | moved
        changed: dict[str, ReplicaOffsets] = {}
        removed: list[str] = []
        for key in sorted(keys):
            replica = table.get(key)
            if replica is None:
                if sent.pop(key, None) is not None:
                    removed.append(key)
                continue
            offsets = source.offsets(replica)
            if sent.get(key) != offsets:
                sent[key] = changed[key] = offsets
        return _report(table.spu_id, changed, full=False, removed=removed)


def _report(
    spu_id: int, offsets: dict[str, ReplicaOffsets], *, full: bool, removed: Sequence[str] = ()
) -> StatusReport:
    return StatusReport(
        spu_id=spu_id,
        replicas=[
            ReplicaReport(partition=p, leo=o.leo, hw=o.hw, lsr=o.lsr) for p, o in offsets.items()
        ],
        full=full,
        removed=list(removed),
    )
