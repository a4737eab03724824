"""A topic spec beyond the partition or replication caps is refused, never allocated."""

from __future__ import annotations

from ha_sc.controllers.actions import UpdateStatus
from ha_sc.controllers.cluster_plan import plan_cluster
from ha_sc.controllers.topics.validation import (
    MAX_PARTITIONS_PER_TOPIC,
    MAX_REPLICATION_FACTOR,
    TopicLimits,
    partitions_ahead,
    validate_topic_spec,
)
from ha_sc.model.kinds import Topic
from ha_sc.model.meta import ObjectMeta
from ha_sc.model.replicas import TopicReplicas
from ha_sc.model.topic import TopicResolution, TopicSpec, TopicStatus


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


LIMITS = TopicLimits(max_partitions_per_topic=10, max_partitions_in_cluster=12)


def _topic(name: str, partitions: int, create_revision: int) -> Topic:
    return Topic(
        meta=ObjectMeta(key=name, revision=create_revision, create_revision=create_revision),
        spec=_spec(partitions, 1),
        status=TopicStatus(),
    )


def _statuses(topics: list[Topic]) -> dict[str, TopicStatus]:
    actions = plan_cluster(
        spus={}, topics={t.key: t for t in topics}, partitions={}, connected=None, limits=LIMITS
    )
    return {a.key: a.status for a in actions if isinstance(a, UpdateStatus)}


def test_two_hand_written_topics_over_the_cluster_cap_refuse_the_later_one() -> None:
    # listed later-first: the order of the cache does not decide, the create revision does
    statuses = _statuses([_topic("later", 6, create_revision=9), _topic("earlier", 8, 4)])
    # valid: refused only for want of online SPUs (this plan has none)
    assert statuses["earlier"].resolution is TopicResolution.INSUFFICIENT_RESOURCES
    assert statuses["later"].resolution is TopicResolution.INVALID_CONFIG
    assert "to 14, over the limit of 12 partitions in the cluster" in statuses["later"].reason


def test_a_topic_over_the_per_topic_cap_takes_no_room_from_the_others() -> None:
    statuses = _statuses([_topic("huge", 2**31 - 1, create_revision=2), _topic("small", 10, 3)])
    assert statuses["huge"].resolution is TopicResolution.INVALID_CONFIG
    assert "limit of 10 partitions per topic" in statuses["huge"].reason
    assert statuses["small"].resolution is TopicResolution.INSUFFICIENT_RESOURCES


def test_provisioned_topics_hold_their_room_whatever_their_revision() -> None:
    held = _topic("held", 8, create_revision=20).model_copy(
        update={"status": TopicStatus(resolution=TopicResolution.PROVISIONED)}
    )
    ahead, total = partitions_ahead([_topic("new", 5, create_revision=1), held], LIMITS)
    assert ahead == {"held": 0, "new": 8}
    assert total == 8


def test_an_assigned_map_beyond_the_caps_is_refused() -> None:
    wide = TopicSpec(
        replicas=TopicReplicas.new_assigned({0: list(range(1, MAX_REPLICATION_FACTOR + 2))})
    )
    problem = validate_topic_spec(wide, [])
    assert problem is not None and f"limit of {MAX_REPLICATION_FACTOR}" in problem
    many = TopicSpec(replicas=TopicReplicas.new_assigned({pid: [1] for pid in range(11)}))
    problem = validate_topic_spec(many, [], limits=LIMITS)
    assert problem is not None and "11 partitions exceed the limit of 10" in problem
