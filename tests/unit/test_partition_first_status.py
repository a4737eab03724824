"""A partition is created with the offsets its SPUs first report, so it is written once."""

from ha_sc.controllers import ReportedOffsets, SpuInfo, choose_leader, reduce_partition
from ha_sc.controllers.partitions.reducer import first_status
from ha_sc.model import (
    ObjectMeta,
    OwnerRef,
    Partition,
    PartitionResolution,
    PartitionSpec,
    PartitionStatus,
)

SPEC = PartitionSpec(leader=5001, replicas=[5001, 5002, 5003])
ONLINE = {5001: SpuInfo(5001, online=True), 5002: SpuInfo(5002, online=True)}


def created(status: PartitionStatus) -> Partition:
    return Partition(
        meta=ObjectMeta(key="orders-0", revision=3, owner=OwnerRef(kind="topics", key="orders")),
        spec=SPEC,
        status=status,
    )


def test_a_new_partition_led_by_an_online_spu_starts_online_with_empty_logs() -> None:
    status = first_status(SPEC, {5001, 5002})
    assert status.resolution is PartitionResolution.ONLINE
    assert (status.leader.spu, status.leader.hw, status.leader.leo) == (5001, 0, 0)
    assert [(r.spu, r.hw, r.leo) for r in status.replicas] == [(5002, 0, 0), (5003, 0, 0)]
    assert status.lsr == 2  # the leader SPU takes its followers as in sync at first


def test_the_first_reports_of_empty_replicas_make_no_second_write() -> None:
    partition = created(first_status(SPEC, {5001, 5002}))
    reported = {
        5001: ReportedOffsets(leo=0, hw=0, lsr=2),
        5002: ReportedOffsets(leo=0, hw=0),
        5003: ReportedOffsets(leo=0, hw=0),
    }
    assert reduce_partition(partition, spus=ONLINE, reported=reported) == []


def test_a_report_that_differs_is_still_written() -> None:
    partition = created(first_status(SPEC, {5001, 5002}))
    reported = {5001: ReportedOffsets(leo=4, hw=4, lsr=1), 5002: ReportedOffsets(leo=4, hw=4)}
    [update] = reduce_partition(partition, spus=ONLINE, reported=reported)
    status = update.status  # type: ignore[union-attr]
    assert (status.leader.hw, status.leader.leo, status.lsr) == (4, 4, 1)
    assert [(r.spu, r.leo) for r in status.replicas] == [(5002, 4), (5003, 0)]


def test_the_next_leader_of_a_new_partition_is_chosen_as_from_an_empty_status() -> None:
    online = {5002, 5003}
    assert choose_leader(SPEC, first_status(SPEC, {5001}), online) == choose_leader(
        SPEC, PartitionStatus(), online
    )


def test_a_new_partition_whose_leader_is_offline_starts_offline() -> None:
    assert first_status(SPEC, {5002}) == PartitionStatus()
