"""Partition status follows its leader SPU; failover to the in-sync follower with least lag."""

import pytest

from ha_sc.controllers import (
    Action,
    ReportedOffsets,
    SimulatedCluster,
    SpuInfo,
    UpdateSpec,
    UpdateStatus,
    choose_leader,
    is_in_sync,
    reduce_partition,
    simulate_actions,
    with_reported_offsets,
)
from ha_sc.model import (
    Kind,
    ObjectMeta,
    OwnerRef,
    Partition,
    PartitionResolution,
    PartitionSpec,
    PartitionStatus,
    ReplicaStatus,
)

Resolution = PartitionResolution


def partition(
    leader: int,
    replicas: list[int],
    *,
    resolution: Resolution = Resolution.ONLINE,
    status_leader: tuple[int, int, int] | None = None,
    followers: list[tuple[int, int, int]] | None = None,
) -> Partition:
    """A partition whose status reports (spu, hw, leo) for its leader and followers."""
    spu, hw, leo = status_leader or (leader, -1, -1)
    return Partition(
        meta=ObjectMeta(key="orders-0", revision=7, owner=OwnerRef(kind="topics", key="orders")),
        spec=PartitionSpec(leader=leader, replicas=replicas),
        status=PartitionStatus(
            resolution=resolution,
            leader=ReplicaStatus(spu=spu, hw=hw, leo=leo),
            replicas=[ReplicaStatus(spu=s, hw=h, leo=e) for s, h, e in followers or []],
        ),
    )


def spus(online: list[int], offline: tuple[int, ...] = ()) -> dict[int, SpuInfo]:
    infos = [SpuInfo(i, online=True) for i in online] + [SpuInfo(i) for i in offline]
    return {info.id: info for info in infos}


def settle(p: Partition, cluster: dict[int, SpuInfo]) -> tuple[Partition, list[list[Action]]]:
    state = SimulatedCluster.of([(Kind.PARTITION, p)])
    passes: list[list[Action]] = []
    for _ in range(5):
        current = state.partitions["orders-0"]
        actions = reduce_partition(current, spus=cluster)
        assert reduce_partition(current, spus=cluster) == actions
        if not actions:
            return current, passes
        assert len({(a.kind, a.key) for a in actions}) == len(actions), "two writes to one object"
        passes.append(actions)
        state = simulate_actions(state, actions)
    raise AssertionError("no fixed point")


def test_new_partition_goes_online_with_its_leader() -> None:
    p = partition(1, [1, 2], resolution=Resolution.OFFLINE, status_leader=(-1, -1, -1))
    [action] = reduce_partition(p, spus=spus([1, 2]))
    assert action == UpdateStatus(
        Kind.PARTITION,
        "orders-0",
        7,
        PartitionStatus(resolution=Resolution.ONLINE, leader=ReplicaStatus(spu=1)),
    )


def test_online_partition_with_online_leader_needs_nothing() -> None:
    p = partition(1, [1, 2], status_leader=(1, 10, 10), followers=[(2, 10, 10)])
    assert reduce_partition(p, spus=spus([1, 2])) == []


def test_failover_picks_in_sync_follower_with_least_lag() -> None:
    p = partition(
        1,
        [1, 2, 3, 4],
        status_leader=(1, 100, 110),
        followers=[(2, 100, 105), (3, 100, 108), (4, 90, 99)],
    )
    cluster = spus([2, 3, 4], offline=(1,))
    assert reduce_partition(p, spus=cluster) == [
        UpdateSpec(Kind.PARTITION, "orders-0", 7, PartitionSpec(leader=3, replicas=[1, 2, 3, 4]))
    ]
    final, passes = settle(p, cluster)
    assert [type(a) for actions in passes for a in actions] == [UpdateSpec, UpdateStatus]
    assert final.spec == PartitionSpec(leader=3, replicas=[1, 2, 3, 4])
    assert final.status == PartitionStatus(
        resolution=Resolution.ONLINE,
        leader=ReplicaStatus(spu=3, hw=100, leo=108),
        replicas=[
            ReplicaStatus(spu=2, hw=100, leo=105),
            ReplicaStatus(spu=4, hw=90, leo=99),
            ReplicaStatus(spu=1, hw=100, leo=110),
        ],
        lsr=0,
    )


def test_no_follower_in_sync_means_leader_offline() -> None:
    p = partition(1, [1, 2, 3], status_leader=(1, 100, 110), followers=[(2, 90, 99), (3, 100, 110)])
    cluster = spus([2], offline=(1, 3))
    expected = p.status.model_copy(update={"resolution": Resolution.LEADER_OFFLINE})
    assert reduce_partition(p, spus=cluster) == [
        UpdateStatus(Kind.PARTITION, "orders-0", 7, expected)
    ]
    final, _ = settle(p, cluster)
    assert final.spec == p.spec
    assert final.status.resolution is Resolution.LEADER_OFFLINE


def test_leader_offline_partition_recovers_with_its_leader() -> None:
    p = partition(1, [1, 2], resolution=Resolution.LEADER_OFFLINE, status_leader=(1, 5, 5))
    final, passes = settle(p, spus([1]))
    assert len(passes) == 1
    assert final.spec.leader == 1
    assert final.status.resolution is Resolution.ONLINE


def test_leader_offline_partition_fails_over_when_in_sync_follower_returns() -> None:
    p = partition(
        1,
        [1, 2],
        resolution=Resolution.LEADER_OFFLINE,
        status_leader=(1, 5, 6),
        followers=[(2, 5, 5)],
    )
    assert reduce_partition(p, spus=spus([], offline=(1, 2))) == []
    final, _ = settle(p, spus([2], offline=(1,)))
    assert final.spec.leader == 2
    assert final.status.resolution is Resolution.ONLINE
    assert final.status.leader == ReplicaStatus(spu=2, hw=5, leo=5)


def test_never_served_partition_stays_offline_without_candidate() -> None:
    p = partition(1, [1, 2], resolution=Resolution.OFFLINE)
    assert reduce_partition(p, spus=spus([], offline=(1, 2))) == []


def test_unregistered_leader_counts_as_offline() -> None:
    p = partition(1, [1, 2], status_leader=(1, 3, 3), followers=[(2, 3, 3)])
    [action] = reduce_partition(p, spus=spus([2]))
    assert isinstance(action, UpdateSpec)
    assert action.spec == PartitionSpec(leader=2, replicas=[1, 2])


def test_no_fail_back_to_the_preferred_replica() -> None:
    after_failover = partition(2, [1, 2], status_leader=(2, 50, 50), followers=[(1, 50, 50)])
    assert reduce_partition(after_failover, spus=spus([1, 2])) == []


@pytest.mark.parametrize(
    ("leader", "followers", "online", "chosen"),
    [
        # least lag wins
        ((1, 100, 110), [(2, 100, 105), (3, 100, 108)], {2, 3}, 3),
        # offline followers never lead
        ((1, 100, 110), [(2, 100, 105), (3, 100, 108)], {2}, 2),
        # below the high watermark: not in sync
        ((1, 100, 110), [(2, 90, 99), (3, 100, 100)], {2, 3}, 3),
        ((1, 100, 110), [(2, 90, 99)], {2}, None),
        # equal offsets: the earlier replica in the spec
        ((1, 100, 110), [(3, 100, 110), (2, 100, 110)], {2, 3}, 2),
        # no high watermark reported yet: every online replica qualifies
        ((1, -1, -1), [(2, -1, -1), (3, -1, 4)], {2, 3}, 3),
        ((1, -1, -1), [], {3}, 3),
        # no replica online
        ((1, 100, 110), [(2, 100, 110)], set(), None),
    ],
)
def test_choose_leader(
    leader: tuple[int, int, int],
    followers: list[tuple[int, int, int]],
    online: set[int],
    chosen: int | None,
) -> None:
    p = partition(1, [1, 2, 3], status_leader=leader, followers=followers)
    assert choose_leader(p.spec, p.status, online) == chosen


def test_choose_leader_uses_offsets_of_an_earlier_leader_in_the_status() -> None:
    # the spec moved to 2 and 2 died before the status caught up; 1 is back and in sync
    p = partition(2, [1, 2], status_leader=(1, 10, 12), followers=[(2, 10, 10)])
    assert choose_leader(p.spec, p.status, {1}) == 1


@pytest.mark.parametrize(
    ("leo", "hw", "in_sync"), [(10, 10, True), (11, 10, True), (9, 10, False), (-1, -1, True)]
)
def test_in_sync_means_holding_the_high_watermark(leo: int, hw: int, in_sync: bool) -> None:
    assert is_in_sync(ReplicaStatus(spu=2, leo=leo), hw) is in_sync


# offsets the SPUs reported to the leader SC (fresher than the stored status)


def test_reported_offsets_of_leader_and_followers_reach_the_status() -> None:
    p = partition(1, [1, 2, 3], status_leader=(1, 10, 10), followers=[(2, 10, 10), (3, 8, 9)])
    reported = {
        1: ReportedOffsets(leo=20, hw=18, lsr=1),
        2: ReportedOffsets(leo=20, hw=18),
    }
    status = with_reported_offsets(p.status, p.spec, reported)
    assert status.leader == ReplicaStatus(spu=1, hw=18, leo=20)
    assert status.lsr == 1
    assert status.replicas == [
        ReplicaStatus(spu=2, hw=18, leo=20),
        ReplicaStatus(spu=3, hw=8, leo=9),
    ]
    [action] = reduce_partition(p, spus=spus([1, 2, 3]), reported=reported)
    assert action == UpdateStatus(Kind.PARTITION, "orders-0", 7, status)


def test_unchanged_reports_leave_the_status_object_alone() -> None:
    p = partition(1, [1, 2], status_leader=(1, 10, 10), followers=[(2, 10, 10)])
    same = {1: ReportedOffsets(leo=10, hw=10), 2: ReportedOffsets(leo=10, hw=10)}
    assert with_reported_offsets(p.status, p.spec, same) is p.status
    assert with_reported_offsets(p.status, p.spec, {}) is p.status
    assert reduce_partition(p, spus=spus([1, 2]), reported=same) == []


def test_a_follower_report_does_not_speak_for_the_leader() -> None:
    """Only the spec's leader sets the leader's offsets and the in-sync count."""
    p = partition(1, [1, 2], status_leader=(1, 10, 10), followers=[(2, 10, 10)])
    status = with_reported_offsets(p.status, p.spec, {2: ReportedOffsets(leo=4, hw=4, lsr=7)})
    assert status.leader == ReplicaStatus(spu=1, hw=10, leo=10)
    assert status.lsr == p.status.lsr
    assert status.replicas == [ReplicaStatus(spu=2, hw=4, leo=4)]


def test_failover_follows_the_followers_reports_not_the_stale_stored_offsets() -> None:
    """Stored: follower 2 ahead of 3. Reported since: 3 has caught up further. 3 leads."""
    p = partition(1, [1, 2, 3], status_leader=(1, 100, 120), followers=[(2, 100, 115), (3, 90, 95)])
    reported = {2: ReportedOffsets(leo=118, hw=100), 3: ReportedOffsets(leo=120, hw=100)}
    cluster = spus([2, 3], offline=(1,))
    assert reduce_partition(p, spus=cluster) == [
        UpdateSpec(Kind.PARTITION, "orders-0", 7, PartitionSpec(leader=2, replicas=[1, 2, 3]))
    ]
    assert reduce_partition(p, spus=cluster, reported=reported) == [
        UpdateSpec(Kind.PARTITION, "orders-0", 7, PartitionSpec(leader=3, replicas=[1, 2, 3]))
    ]


def test_a_follower_reported_behind_the_high_watermark_cannot_lead() -> None:
    p = partition(1, [1, 2], status_leader=(1, 100, 100), followers=[(2, 100, 100)])
    behind = {2: ReportedOffsets(leo=60, hw=60)}  # e.g. it lost its disk and refetches
    [action] = reduce_partition(p, spus=spus([2], offline=(1,)), reported=behind)
    assert isinstance(action, UpdateStatus)
    assert action.status.resolution is Resolution.LEADER_OFFLINE
