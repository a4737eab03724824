"""What one SPU last told the leader about every replica it holds.

An SPU's first report of a session is full; later ones carry only the replicas whose
offsets changed and the partitions it gave up (most are empty heartbeats). With tens of
thousands of replicas per SPU, rebuilding the whole picture on each report (every 0.3 s
per SPU) cost the leader's event loop time that grew with the store; here a report
amends the picture in the time of its own changes, and the whole report is built only
when someone reads it after a change (the controllers, once a pass).
"""

from __future__ import annotations

from ha_sc.protocol import ReplicaReport, StatusReport
from ha_sc.sc.spu_connection import ReceivedStatus


class SpuPicture:
    """One SPU's replicas as last reported, kept current by ``amend``."""

    __slots__ = ("_replicas", "_report", "_trace", "at", "spu_id")

    def __init__(self, status: ReceivedStatus) -> None:
        self.spu_id = status.report.spu_id
        self.at = status.at
        self._trace: dict[str, str] = {}
        self._replicas: dict[str, ReplicaReport] = {}
        self._report: StatusReport | None = None
        self._replace(status.report)

    def _replace(self, report: StatusReport) -> None:
        self._trace = report.trace
        self._replicas = {r.partition: r for r in report.replicas}
        self._report = report if report.full else None

    def amend(self, status: ReceivedStatus) -> None:
        """Take a later report of the same SPU: a full one replaces the picture, a
        partial one changes what it names."""
        report = status.report
        self.at = status.at
        if report.full:
            self._replace(report)
            return
        if not report.replicas and not report.removed and not report.trace:
            return  # a quiet heartbeat: nothing but its time changes
        for partition in report.removed:
            self._replicas.pop(partition, None)
        for replica in report.replicas:
            self._replicas[replica.partition] = replica
        self._trace = report.trace
        self._report = None

    def received(self) -> ReceivedStatus:
        """The SPU's whole picture as one full report, and when it was last heard."""
        if self._report is None:
            # built from reports validated on arrival: no second validation
            self._report = StatusReport.model_construct(
                spu_id=self.spu_id,
                replicas=list(self._replicas.values()),
                full=True,
                removed=[],
                trace=self._trace,
            )
        return ReceivedStatus(self._report, self.at)
