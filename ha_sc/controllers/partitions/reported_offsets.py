"""What the connected SPUs last reported, arranged for the partition controller.

``offsets_by_partition`` arranges reports at once; ``ReportedOffsetsBook`` keeps the
arrangement across passes and amends it by what changed. Each SPU's report is its whole
picture, rebuilt by the leader only after the SPU reported a change, and made of the
replica reports as they arrived: a picture that is the same object as last time changed
nothing, and in one that is not, a replica report that is the same object did not
change either. So an idle pass over 66k replicas per SPU looks at three reports, not
200k replicas, and tells the loop which partitions' offsets moved.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ha_sc.controllers.partitions.status_offsets import ReportedOffsets
from ha_sc.protocol import ReplicaReport, StatusReport


def offsets_by_partition(reports: Iterable[StatusReport]) -> dict[str, dict[int, ReportedOffsets]]:
    """Partition key -> SPU id -> the offsets that SPU reported for its replica."""
    result: dict[str, dict[int, ReportedOffsets]] = {}
    for report in reports:
        for replica in report.replicas:
            result.setdefault(replica.partition, {})[report.spu_id] = _offsets(replica)
    return result


class ReportedOffsetsBook:
    """``offsets_by_partition`` of the latest reports, amended by ``update``.

    ``by_partition`` is changed only by ``update``: a reader on another thread may use
    it while the owner does not call ``update`` (the loop's plan runs between them).
    """

    def __init__(self) -> None:
        self._by_partition: dict[str, dict[int, ReportedOffsets]] = {}
        self._seen: dict[int, tuple[StatusReport, dict[str, ReplicaReport]]] = {}
        """SPU id -> its last report taken, and its replica reports by partition."""

    @property
    def by_partition(self) -> Mapping[str, Mapping[int, ReportedOffsets]]:
        """Partition key -> SPU id -> the offsets that SPU reported for its replica."""
        return self._by_partition

    def is_current(self, reports: Iterable[StatusReport]) -> bool:
        """Whether ``reports`` are the very reports taken last (nothing to update)."""
        latest = {report.spu_id: report for report in reports}
        return latest.keys() == self._seen.keys() and all(
            self._seen[spu_id][0] is report for spu_id, report in latest.items()
        )

    def update(self, reports: Iterable[StatusReport]) -> set[str]:
        """Take the latest report of every SPU that counts (an SPU not among them no
        longer does); the partitions whose reported offsets changed."""
        latest = {report.spu_id: report for report in reports}
        changed: set[str] = set()
        for spu_id in [s for s in self._seen if s not in latest]:
            _, replicas = self._seen.pop(spu_id)
            for partition in replicas:
                self._forget(partition, spu_id)
            changed.update(replicas)
        for spu_id, report in latest.items():
            seen = self._seen.get(spu_id)
            if seen is not None and seen[0] is report:
                continue  # the same picture: nothing reported since
            before = seen[1] if seen is not None else {}
            now: dict[str, ReplicaReport] = {}
            for replica in report.replicas:
                partition = replica.partition
                now[partition] = replica
                was = before.get(partition)
                if was is replica or (
                    was is not None
                    and (was.leo, was.hw, was.lsr) == (replica.leo, replica.hw, replica.lsr)
                ):
                    continue
                self._by_partition.setdefault(partition, {})[spu_id] = _offsets(replica)
                changed.add(partition)
            for partition in [p for p in before if p not in now]:
                self._forget(partition, spu_id)
                changed.add(partition)
            self._seen[spu_id] = (report, now)
        return changed

    def _forget(self, partition: str, spu_id: int) -> None:
        offsets = self._by_partition.get(partition)
        if offsets is None:
            return
        offsets.pop(spu_id, None)
        if not offsets:
            del self._by_partition[partition]


def _offsets(replica: ReplicaReport) -> ReportedOffsets:
    return ReportedOffsets(leo=replica.leo, hw=replica.hw, lsr=replica.lsr)
