"""Topic spec, replicas and name rules."""

import pytest
from pydantic import ValidationError

from ha_sc.model import (
    AssignedReplicas,
    ComputedReplicas,
    PartitionMap,
    TopicReplicas,
    TopicResolution,
    TopicSpec,
    TopicStatus,
    format_validation_error,
    validate_topic_name,
)


def _assigned_error(maps: list[dict[str, object]]) -> str:
    with pytest.raises(ValidationError) as info:
        TopicSpec.model_validate({"replicas": {"assigned": {"maps": maps}}})
    return format_validation_error(info.value)


def test_computed_replicas_counts() -> None:
    replicas = TopicReplicas.new_computed(3, 2, ignore_rack_assignment=True)
    assert replicas.partition_count() == 3
    assert replicas.replication_factor() == 2
    assert replicas.computed == ComputedReplicas(
        partitions=3, replication_factor=2, ignore_rack_assignment=True
    )
    assert replicas.assigned is None


def test_assigned_replicas_counts_and_map() -> None:
    replicas = TopicReplicas.new_assigned({0: [5001, 5002], 1: [5002, 5003]})
    assert replicas.partition_count() == 2
    assert replicas.replication_factor() == 2
    assert replicas.assigned is not None
    assert replicas.assigned.replica_map() == {0: [5001, 5002], 1: [5002, 5003]}


def test_replicas_json_shape() -> None:
    computed = TopicReplicas.new_computed(1, 1)
    assert computed.model_dump(exclude_none=True) == {
        "computed": {"partitions": 1, "replication_factor": 1, "ignore_rack_assignment": False}
    }
    assigned = TopicReplicas.new_assigned({0: [1]})
    assert assigned.model_dump(exclude_none=True) == {
        "assigned": {"maps": [{"id": 0, "replicas": [1]}]}
    }


@pytest.mark.parametrize("body", [{}, {"computed": None, "assigned": None}])
def test_replicas_need_one_form(body: dict[str, object]) -> None:
    with pytest.raises(ValidationError, match="exactly one of 'computed' or 'assigned'"):
        TopicReplicas.model_validate(body)


def test_replicas_refuse_both_forms() -> None:
    with pytest.raises(ValidationError, match="exactly one"):
        TopicReplicas(
            computed=ComputedReplicas(partitions=1, replication_factor=1),
            assigned=AssignedReplicas(maps=[PartitionMap(id=0, replicas=[1])]),
        )


@pytest.mark.parametrize("field", ["partitions", "replication_factor"])
def test_computed_counts_at_least_one(field: str) -> None:
    body = {"partitions": 1, "replication_factor": 1, field: 0}
    with pytest.raises(ValidationError) as info:
        TopicSpec.model_validate({"replicas": {"computed": body}})
    assert format_validation_error(info.value) == (
        f"replicas.computed.{field}: Input should be greater than or equal to 1"
    )


def test_assigned_needs_a_partition() -> None:
    assert _assigned_error([]) == (
        "replicas.assigned.maps: assigned replicas need at least one partition"
    )


def test_assigned_ids_start_at_zero() -> None:
    message = _assigned_error([{"id": 1, "replicas": [0]}, {"id": 2, "replicas": [2]}])
    assert message == "replicas.assigned.maps: partition ids must start at 0, found 1"


def test_assigned_ids_without_gaps() -> None:
    message = _assigned_error([{"id": 0, "replicas": [0]}, {"id": 2, "replicas": [2]}])
    assert message.startswith("replicas.assigned.maps: partition ids must run 0, 1, 2")
    assert "expected 1, found 2" in message


def test_assigned_ids_in_order() -> None:
    maps = [{"id": 0, "replicas": [0]}, {"id": 2, "replicas": [2]}, {"id": 1, "replicas": [1]}]
    assert "expected 1, found 2" in _assigned_error(maps)


def test_assigned_ids_not_repeated() -> None:
    maps = [{"id": 0, "replicas": [0]}, {"id": 1, "replicas": [1]}, {"id": 1, "replicas": [2]}]
    assert _assigned_error(maps) == "replicas.assigned.maps: partition id 1 appears more than once"


def test_assigned_ids_not_negative() -> None:
    message = _assigned_error([{"id": -1, "replicas": [0]}])
    assert message == "replicas.assigned.maps.0.id: Input should be greater than or equal to 0"


def test_assigned_partition_needs_a_replica() -> None:
    message = _assigned_error([{"id": 0, "replicas": []}, {"id": 1, "replicas": [1]}])
    assert message == (
        "replicas.assigned.maps.0.replicas: a partition needs at least one replica spu id"
    )


def test_assigned_same_replica_count() -> None:
    message = _assigned_error([{"id": 0, "replicas": [1, 2]}, {"id": 1, "replicas": [1]}])
    assert message == (
        "replicas.assigned.maps: every partition needs the same number of replicas: "
        "partition 0 has 2, partition 1 has 1"
    )


@pytest.mark.parametrize(
    ("maps", "where"),
    [
        ([{"id": 0, "replicas": [1, 2]}, {"id": 1, "replicas": [1, 1]}], "maps.1"),
        ([{"id": 0, "replicas": [3, 1, 2, 3]}], "maps.0"),
    ],
)
def test_assigned_spu_not_repeated(maps: list[dict[str, object]], where: str) -> None:
    message = _assigned_error(maps)
    assert message.startswith(f"replicas.assigned.{where}.replicas: spu id ")
    assert message.endswith("appears more than once")


def test_assigned_spu_ids_not_negative() -> None:
    message = _assigned_error([{"id": 0, "replicas": [1, 2]}, {"id": 1, "replicas": [1, -2]}])
    assert message == (
        "replicas.assigned.maps.1.replicas.1: Input should be greater than or equal to 0"
    )


def test_assigned_valid_map_accepted() -> None:
    spec = TopicSpec.model_validate(
        {
            "replicas": {
                "assigned": {
                    "maps": [
                        {"id": 0, "replicas": [1]},
                        {"id": 1, "replicas": [1]},
                        {"id": 2, "replicas": [2]},
                    ]
                }
            }
        }
    )
    assert spec.partition_count() == 3
    assert spec.replication_factor() == 1


@pytest.mark.parametrize("field", ["retention_time_seconds", "segment_size", "max_partition_size"])
def test_storage_settings_positive(field: str) -> None:
    body = {"replicas": {"computed": {"partitions": 1, "replication_factor": 1}}, field: 0}
    with pytest.raises(ValidationError) as info:
        TopicSpec.model_validate(body)
    assert format_validation_error(info.value) == f"{field}: Input should be greater than 0"


def test_partition_size_not_below_segment_size() -> None:
    with pytest.raises(ValidationError, match="max_partition_size 10 is less than segment_size 20"):
        TopicSpec(replicas=TopicReplicas.new_computed(1, 1), segment_size=20, max_partition_size=10)


def test_spec_refuses_unknown_field() -> None:
    with pytest.raises(ValidationError) as info:
        TopicSpec.model_validate(
            {"replicas": {"computed": {"partitions": 1, "replication_factor": 1}}, "retention": 5}
        )
    assert format_validation_error(info.value) == "retention: Extra inputs are not permitted"


def test_spec_is_frozen() -> None:
    spec = TopicSpec(replicas=TopicReplicas.new_computed(1, 1))
    with pytest.raises(ValidationError):
        spec.segment_size = 10  # type: ignore[misc]


def test_status_defaults_and_values() -> None:
    status = TopicStatus()
    assert status.resolution is TopicResolution.INIT
    assert status.replica_map == {}
    assert status.reason == ""
    assert [r.value for r in TopicResolution] == [
        "Init",
        "Pending",
        "Provisioned",
        "InsufficientResources",
        "InvalidConfig",
        "Deleting",
    ]


def test_status_replica_map_from_json_keys() -> None:
    status = TopicStatus.model_validate({"replica_map": {"10": [1], "2": [2]}})
    assert list(status.replica_map) == [2, 10]


@pytest.mark.parametrize("name", ["orders", "a", "topic-1", "1-2-3", "a" * 63])
def test_topic_name_valid(name: str) -> None:
    assert validate_topic_name(name) == name


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "must not be empty"),
        ("a" * 64, "the limit is 63"),
        ("Orders", "only lowercase letters, digits and '-'"),
        ("my_topic", "only lowercase letters, digits and '-'"),
        ("my topic", "only lowercase letters, digits and '-'"),
        ("a/b", "only lowercase letters, digits and '-'"),
        ("-orders", "must start and end with a letter or digit"),
        ("orders-", "must start and end with a letter or digit"),
    ],
)
def test_topic_name_invalid(name: str, problem: str) -> None:
    with pytest.raises(ValueError, match="topic name") as info:
        validate_topic_name(name)
    assert problem in str(info.value)
