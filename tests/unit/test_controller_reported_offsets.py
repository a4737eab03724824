"""The connected SPUs' reports, arranged per partition for the partition controller."""

from ha_sc.controllers import ReportedOffsets
from ha_sc.controllers.partitions.reported_offsets import ReportedOffsetsBook, offsets_by_partition
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


def test_the_book_tells_which_partitions_offsets_moved() -> None:
    book = ReportedOffsetsBook()
    first = StatusReport(
        spu_id=5001,
        replicas=[
            ReplicaReport(partition="orders-0", leo=10, hw=8, lsr=1),
            ReplicaReport(partition="orders-1", leo=3, hw=3),
        ],
    )
    follower = StatusReport(
        spu_id=5002, replicas=[ReplicaReport(partition="orders-0", leo=9, hw=8)]
    )
    assert book.update([first, follower]) == {"orders-0", "orders-1"}
    assert book.by_partition == offsets_by_partition([first, follower])
    assert book.is_current([first, follower])
    assert book.update([first, follower]) == set()  # the same pictures: nothing to look at
    amended = StatusReport(
        spu_id=5001,
        replicas=[first.replicas[0], ReplicaReport(partition="orders-1", leo=4, hw=4)],
    )
    assert not book.is_current([amended, follower])
    assert book.update([amended, follower]) == {"orders-1"}
    assert book.by_partition["orders-1"] == {5001: ReportedOffsets(leo=4, hw=4)}
    again = StatusReport(spu_id=5001, replicas=[ReplicaReport(partition="orders-1", leo=4, hw=4)])
    assert book.update([again, follower]) == {"orders-0"}  # equal offsets, a new report: no move
    assert book.by_partition == offsets_by_partition([again, follower])
    assert not book.is_current([again])
    assert book.update([again]) == {"orders-0"}  # 5002 no longer connected
    assert book.by_partition == {"orders-1": {5001: ReportedOffsets(leo=4, hw=4)}}
