"""What the connected SPUs last reported, arranged for the partition controller."""

from __future__ import annotations

from collections.abc import Iterable

from ha_sc.controllers.partitions.status_offsets import ReportedOffsets
from ha_sc.protocol import StatusReport


def offsets_by_partition(reports: Iterable[StatusReport]) -> dict[str, dict[int, ReportedOffsets]]:
    """Partition key -> SPU id -> the offsets that SPU reported for its replica."""
    result: dict[str, dict[int, ReportedOffsets]] = {}
    for report in reports:
        for replica in report.replicas:
            result.setdefault(replica.partition, {})[report.spu_id] = ReportedOffsets(
                leo=replica.leo, hw=replica.hw, lsr=replica.lsr
            )
    return result
