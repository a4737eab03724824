"""A topic spec beyond the partition or replication caps is refused, never allocated."""

from __future__ import annotations

from ha_sc.controllers.topic_validation import (
    MAX_PARTITIONS_PER_TOPIC,
    MAX_REPLICATION_FACTOR,
    validate_topic_spec,
)
from ha_sc.model.replicas import TopicReplicas
from ha_sc.model.topic import TopicSpec


def _spec(partitions: int, factor: int) -> TopicSpec:
    return TopicSpec(replicas=TopicReplicas.new_computed(partitions, factor))


def test_partitions_beyond_the_cap_are_refused_naming_the_limit() -> None:
    problem = validate_topic_spec(_spec(2**31 - 1, 1), [])
    assert problem is not None
    assert str(MAX_PARTITIONS_PER_TOPIC) in problem


def test_a_replication_factor_beyond_the_cap_is_refused() -> None:
    problem = validate_topic_spec(_spec(1, MAX_REPLICATION_FACTOR + 1), [])
    assert problem is not None
    assert str(MAX_REPLICATION_FACTOR) in problem


def test_partitions_at_the_cap_pass_the_cap_check() -> None:
    assert validate_topic_spec(_spec(MAX_PARTITIONS_PER_TOPIC, 1), []) is None
