"""The connected SPUs' reports, arranged per partition for the partition controller."""

from ha_sc.controllers import ReportedOffsets
from ha_sc.controllers.partitions.reported_offsets import offsets_by_partition
from ha_sc.protocol import ReplicaReport, StatusReport


def test_each_partition_gets_every_reporting_spus_offsets() -> None:
    reports = [
        StatusReport(
            spu_id=5001,
            replicas=[
                ReplicaReport(partition="orders-0", leo=10, hw=8, lsr=1),
                ReplicaReport(partition="orders-1", leo=3, hw=3),
            ],
        ),
        StatusReport(spu_id=5002, replicas=[ReplicaReport(partition="orders-0", leo=9, hw=8)]),
        StatusReport(spu_id=5003),
    ]
    assert offsets_by_partition(reports) == {
        "orders-0": {
            5001: ReportedOffsets(leo=10, hw=8, lsr=1),
            5002: ReportedOffsets(leo=9, hw=8),
        },
        "orders-1": {5001: ReportedOffsets(leo=3, hw=3)},
    }


def test_no_reports_no_offsets() -> None:
    assert offsets_by_partition([]) == {}
