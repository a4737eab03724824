"""Replica placement: least-loaded, distinct SPUs, racks, existing kept, refusals."""

from collections import Counter

import pytest

from ha_sc.controllers import (
    InsufficientSpus,
    SpuInfo,
    assign_replicas,
    spu_load,
    validate_assigned_map,
)
from ha_sc.model import ObjectMeta, Partition, PartitionSpec, PartitionStatus


def online(*ids: int, rack: str | None = None) -> list[SpuInfo]:
    return [SpuInfo(id=spu, rack=rack, online=True) for spu in ids]


def placed(result: dict[int, list[int]] | InsufficientSpus) -> dict[int, list[int]]:
    assert isinstance(result, dict), result
    return result


def test_three_partitions_two_replicas_three_spus() -> None:
    result = placed(assign_replicas(3, 2, online(5001, 5002, 5003)))
    assert result == {0: [5001, 5002], 1: [5003, 5001], 2: [5002, 5003]}
    assert Counter(replicas[0] for replicas in result.values()) == {5001: 1, 5002: 1, 5003: 1}
    held = Counter(spu for replicas in result.values() for spu in replicas)
    assert held == {5001: 2, 5002: 2, 5003: 2}


@pytest.mark.parametrize(
    ("partitions", "factor", "spus", "leads", "holds"),
    [
        (6, 3, 3, (2, 2), (6, 6)),
        (4, 1, 4, (1, 1), (1, 1)),
        (5, 2, 5, (1, 1), (2, 2)),
        (7, 2, 3, (2, 3), (4, 5)),
        (12, 3, 4, (3, 3), (9, 9)),
    ],
)
def test_leaders_and_replicas_spread_evenly(
    partitions: int, factor: int, spus: int, leads: tuple[int, int], holds: tuple[int, int]
) -> None:
    result = placed(assign_replicas(partitions, factor, online(*range(1, spus + 1))))
    assert sorted(result) == list(range(partitions))
    for replicas in result.values():
        assert len(replicas) == factor
        assert len(set(replicas)) == factor, "an SPU twice in one partition"
    led = Counter(replicas[0] for replicas in result.values())
    held = Counter(spu for replicas in result.values() for spu in replicas)
    assert (min(led.values()), max(led.values())) == leads
    assert (min(held.values()), max(held.values())) == holds


def test_offline_spus_are_not_used() -> None:
    spus = [*online(1, 2), SpuInfo(3, online=False), *online(4)]
    result = placed(assign_replicas(6, 2, spus))
    assert {spu for replicas in result.values() for spu in replicas} == {1, 2, 4}


def test_deterministic_whatever_the_input_order() -> None:
    spus = online(7, 3, 5, 1)
    first = assign_replicas(5, 3, spus)
    assert first == assign_replicas(5, 3, list(reversed(spus)))
    assert first == assign_replicas(5, 3, sorted(spus, key=lambda spu: spu.id))


def test_existing_assignments_are_kept() -> None:
    existing = {1: [3, 2]}
    load = {3: (1, 1), 2: (0, 1)}
    result = placed(assign_replicas(3, 2, online(1, 2, 3), existing=existing, load=load))
    assert result[1] == [3, 2]
    assert result == {0: [1, 2], 1: [3, 2], 2: [2, 1]}


def test_existing_outside_the_partition_range_is_dropped() -> None:
    result = assign_replicas(1, 1, online(1), existing={0: [1], 5: [1]})
    assert result == {0: [1]}


def test_nothing_to_place_needs_no_online_spu() -> None:
    existing = {0: [1, 2], 1: [2, 1]}
    assert assign_replicas(2, 2, [], existing=existing) == existing


def test_load_of_other_topics_steers_placement() -> None:
    load = {1: (3, 3), 2: (0, 3), 3: (0, 0)}
    result = placed(assign_replicas(2, 2, online(1, 2, 3), load=load))
    assert result == {0: [3, 1], 1: [2, 3]}


def test_replicas_spread_across_racks() -> None:
    spus = [*online(1, 2, rack="a"), *online(3, 4, rack="b")]
    rack = {spu.id: spu.rack for spu in spus}
    result = placed(assign_replicas(4, 2, spus))
    for replicas in result.values():
        assert {rack[spu] for spu in replicas} == {"a", "b"}, result


def test_racks_ignored_when_asked() -> None:
    spus = [*online(1, 2, rack="a"), *online(3, 4, rack="b")]
    result = placed(assign_replicas(4, 2, spus, ignore_rack=True))
    assert result[0] == [1, 2]


def test_more_replicas_than_racks_use_every_rack() -> None:
    spus = [*online(1, 2, 3, rack="a"), *online(4, 5, 6, rack="b")]
    rack = {spu.id: spu.rack for spu in spus}
    result = placed(assign_replicas(6, 3, spus))
    for replicas in result.values():
        assert {rack[spu] for spu in replicas} == {"a", "b"}
        assert len(set(replicas)) == 3


def test_spu_without_rack_counts_as_its_own_rack() -> None:
    spus = [*online(1, 2, rack="a"), SpuInfo(3, rack=None, online=True)]
    result = placed(assign_replicas(1, 2, spus))
    assert result == {0: [1, 3]}


@pytest.mark.parametrize(
    ("factor", "spus", "available", "reason"),
    [
        (
            3,
            [*online(5001, 5002), SpuInfo(5003, online=False)],
            2,
            "replication factor 3 needs 3 online SPUs, 2 online: 5001, 5002; offline: 5003",
        ),
        (1, [], 0, "replication factor 1 needs 1 online SPU, none online"),
        (2, online(9), 1, "replication factor 2 needs 2 online SPUs, 1 online: 9"),
    ],
)
def test_insufficient_spus(factor: int, spus: list[SpuInfo], available: int, reason: str) -> None:
    assert assign_replicas(2, factor, spus) == InsufficientSpus(factor, available, reason)


def test_refuses_non_positive_counts() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        assign_replicas(0, 1, online(1))
    with pytest.raises(ValueError, match="at least 1"):
        assign_replicas(1, 0, online(1))


@pytest.mark.parametrize(
    ("replica_map", "reason"),
    [
        ({0: [1, 2], 1: [2, 1]}, None),
        ({0: [1, 9]}, "assigned replicas name unknown spu id: 9"),
        ({0: [8, 1], 1: [9, 8]}, "assigned replicas name unknown spu ids: 8, 9"),
    ],
)
def test_validate_assigned_map(replica_map: dict[int, list[int]], reason: str | None) -> None:
    spus = [SpuInfo(1, online=True), SpuInfo(2, online=False)]
    assert validate_assigned_map(replica_map, spus) == reason


def test_spu_load_counts_leaders_and_replicas() -> None:
    def partition(key: str, leader: int, replicas: list[int]) -> Partition:
        return Partition(
            meta=ObjectMeta(key=key),
            spec=PartitionSpec(leader=leader, replicas=replicas),
            status=PartitionStatus(),
        )

    partitions = [
        partition("a-0", 1, [1, 2]),
        partition("a-1", 2, [2, 3]),
        partition("b-0", 1, [1]),
    ]
    assert spu_load(partitions) == {1: (2, 2), 2: (1, 2), 3: (0, 1)}
