"""Partition keys, spec and status."""

import pytest
from pydantic import ValidationError

from ha_sc.model import (
    PartitionResolution,
    PartitionSpec,
    PartitionStatus,
    ReplicaStatus,
    format_validation_error,
    parse_partition_key,
    partition_key,
    validate_partition_key,
)


def test_partition_key() -> None:
    assert partition_key("orders", 0) == "orders-0"
    assert partition_key("my-topic", 12) == "my-topic-12"


def test_partition_key_refuses_negative_index() -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        partition_key("orders", -1)


@pytest.mark.parametrize(
    ("key", "parsed"),
    [("orders-0", ("orders", 0)), ("my-topic-12", ("my-topic", 12)), ("a-b-c-3", ("a-b-c", 3))],
)
def test_parse_partition_key(key: str, parsed: tuple[str, int]) -> None:
    assert parse_partition_key(key) == parsed
    assert partition_key(*parsed) == key


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("orders", "not of the form <topic>-<index>"),
        ("-1", "not of the form <topic>-<index>"),
        ("", "not of the form <topic>-<index>"),
        ("orders-", "does not end in a partition index"),
        ("orders-x", "does not end in a partition index"),
        ("orders-²", "does not end in a partition index"),
        ("orders-01", "leading zero"),
    ],
)
def test_parse_partition_key_malformed(key: str, problem: str) -> None:
    with pytest.raises(ValueError, match="partition key") as info:
        parse_partition_key(key)
    assert problem in str(info.value)


def test_validate_partition_key_checks_topic_name() -> None:
    assert validate_partition_key("orders-3") == "orders-3"
    with pytest.raises(ValueError, match="topic name 'Orders'"):
        validate_partition_key("Orders-3")
    with pytest.raises(ValueError, match="topic name 'orders-'"):
        validate_partition_key("orders--1")


def test_partition_spec() -> None:
    spec = PartitionSpec(leader=5002, replicas=[5002, 5001, 5003])
    assert spec.followers() == [5001, 5003]
    assert PartitionSpec.model_validate_json(spec.model_dump_json()) == spec


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"leader": 1, "replicas": []}, "replicas: a partition needs at least one replica"),
        ({"leader": 1, "replicas": [1, 2, 1]}, "replicas: replicas [1, 2, 1] repeat an spu id"),
        ({"leader": 3, "replicas": [1, 2]}, "leader 3 is not one of the replicas [1, 2]"),
    ],
)
def test_partition_spec_invalid(body: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError) as info:
        PartitionSpec.model_validate(body)
    assert format_validation_error(info.value) == message


def test_partition_spec_is_frozen() -> None:
    spec = PartitionSpec(leader=1, replicas=[1])
    with pytest.raises(ValidationError):
        spec.leader = 2  # type: ignore[misc]


def test_partition_status_defaults() -> None:
    status = PartitionStatus()
    assert status.resolution is PartitionResolution.OFFLINE
    assert status.leader == ReplicaStatus(spu=-1, hw=-1, leo=-1)
    assert (status.replicas, status.lsr, status.size) == ([], 0, 0)
    assert [r.value for r in PartitionResolution] == [
        "Offline",
        "Online",
        "LeaderOffline",
        "ElectionLeaderFound",
    ]


def test_partition_status_round_trip() -> None:
    status = PartitionStatus(
        resolution=PartitionResolution.ONLINE,
        leader=ReplicaStatus(spu=5001, hw=10, leo=12),
        replicas=[ReplicaStatus(spu=5002, hw=10, leo=10)],
        lsr=1,
        size=4096,
    )
    assert PartitionStatus.model_validate_json(status.model_dump_json()) == status


def test_status_ignores_unknown_field() -> None:
    status = PartitionStatus.model_validate({"resolution": "Online", "future_field": 1})
    assert status == PartitionStatus(resolution=PartitionResolution.ONLINE)
