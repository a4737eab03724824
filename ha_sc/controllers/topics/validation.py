"""Whether a topic's spec can be provisioned at all (Fluvio's topic spec checks)."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pydantic import ValidationError

from ha_sc.controllers.spus.info import SpuInfo
from ha_sc.controllers.topics.replica_assignment import validate_assigned_map
from ha_sc.model.codec import format_validation_error
from ha_sc.model.kinds import Topic
from ha_sc.model.replicas import TopicReplicas
from ha_sc.model.topic import TopicResolution, TopicSpec

MAX_PARTITIONS_PER_TOPIC = 100_000
"""Default for the most partitions one topic may have. Replica assignment builds lists
of this size on the leader, so a spec beyond it (even one written to the KV by hand) is
refused as InvalidConfig rather than allocated. 100k keeps the 100k-partition benchmarks."""
MAX_PARTITIONS_IN_CLUSTER = 1_000_000
"""Default for the most partitions all topics of a cluster may have together."""
MAX_REPLICATION_FACTOR = 1_000
"""Most replicas one partition may have (assignment allocates partitions x factor)."""


@dataclass(frozen=True)
class TopicLimits:
    """The partition caps one SC applies (``sc run --max-partitions-*``)."""

    max_partitions_per_topic: int = MAX_PARTITIONS_PER_TOPIC
    max_partitions_in_cluster: int = MAX_PARTITIONS_IN_CLUSTER


DEFAULT_LIMITS = TopicLimits()


def validate_topic_spec(
    spec: TopicSpec,
    spus: Sequence[SpuInfo],
    *,
    limits: TopicLimits = DEFAULT_LIMITS,
    partitions_elsewhere: int = 0,
) -> str | None:
    """Why the topic's replica settings are invalid, or None when they are valid.

    The replica settings are checked again by the model's own rules (a cached spec
    was validated when decoded; one built without validation is caught here), then
    against the caps (``partitions_elsewhere``: the partitions the cluster's other
    topics hold, see ``partitions_ahead``), then an assigned map against the
    registered SPUs. Every check runs before anything sized by the spec is built.
    """
    try:
        TopicReplicas.model_validate(spec.replicas.model_dump())
    except ValidationError as exc:
        return format_validation_error(exc, prefix="replicas")
    problem = _beyond_caps(spec.replicas, limits, partitions_elsewhere)
    if problem is not None:
        return problem
    if spec.replicas.assigned is not None:
        return validate_assigned_map(spec.replicas.assigned.replica_map(), spus)
    return None


def _beyond_caps(replicas: TopicReplicas, limits: TopicLimits, elsewhere: int) -> str | None:
    field = "computed" if replicas.computed is not None else "assigned"
    partitions = replicas.partition_count()
    if partitions > limits.max_partitions_per_topic:
        return (
            f"replicas.{field}: {partitions} partitions exceed the limit of "
            f"{limits.max_partitions_per_topic} partitions per topic"
        )
    if replicas.computed is not None:
        factor = replicas.computed.replication_factor
    else:
        assert replicas.assigned is not None
        factor = max(len(m.replicas) for m in replicas.assigned.maps)
    if factor > MAX_REPLICATION_FACTOR:
        return (
            f"replicas.{field}: {factor} replicas per partition exceed the limit of "
            f"{MAX_REPLICATION_FACTOR}"
        )
    if elsewhere + partitions > limits.max_partitions_in_cluster:
        return (
            f"replicas.{field}: {partitions} partitions would take the cluster to "
            f"{elsewhere + partitions}, over the limit of "
            f"{limits.max_partitions_in_cluster} partitions in the cluster"
        )
    return None


def partitions_ahead(topics: Iterable[Topic], limits: TopicLimits) -> tuple[dict[str, int], int]:
    """Per topic key, the partitions held by the topics counted before it; and the total.

    Provisioned (and deleting) topics hold their partitions and count first; the others
    count in create-revision order (then key), each only when it fits both caps. So when
    topics written by hand take the cluster over its cap together, the one created later
    is the one left over (and becomes InvalidConfig); one over a cap takes no room.
    """
    held = (TopicResolution.PROVISIONED, TopicResolution.DELETING)
    ordered = sorted(
        topics,
        key=lambda t: (t.status.resolution not in held, t.meta.create_revision, t.key),
    )
    ahead: dict[str, int] = {}
    total = 0
    for topic in ordered:
        ahead[topic.key] = total
        count = topic.spec.replicas.partition_count()
        holds = topic.status.resolution in held
        fits = (
            count <= limits.max_partitions_per_topic
            and total + count <= limits.max_partitions_in_cluster
        )
        if holds or fits:
            total += count
    return ahead, total
