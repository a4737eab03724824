"""Whether a topic's spec can be provisioned at all (Fluvio's topic spec checks)."""

from collections.abc import Sequence

from pydantic import ValidationError

from ha_sc.controllers.replica_assignment import validate_assigned_map
from ha_sc.controllers.spu_info import SpuInfo
from ha_sc.model.codec import format_validation_error
from ha_sc.model.replicas import TopicReplicas
from ha_sc.model.topic import TopicSpec

MAX_PARTITIONS_PER_TOPIC = 100_000
"""Most partitions one topic may ask for. Replica assignment builds lists of this size
on the leader, so a spec beyond it (even one written to the KV by hand) is refused as
InvalidConfig rather than allocated. 100k keeps the project's 100k-partition benchmarks."""
MAX_REPLICATION_FACTOR = 1_000
"""Most replicas one partition may ask for (assignment allocates partitions x factor)."""


def validate_topic_spec(spec: TopicSpec, spus: Sequence[SpuInfo]) -> str | None:
    """Why the topic's replica settings are invalid, or None when they are valid.

    The replica settings are checked again by the model's own rules (a cached spec
    was validated when decoded; one built without validation is caught here), then
    an assigned map is checked against the registered SPUs.
    """
    try:
        TopicReplicas.model_validate(spec.replicas.model_dump())
    except ValidationError as exc:
        return format_validation_error(exc, prefix="replicas")
    computed = spec.replicas.computed
    if computed is not None:
        if computed.partitions > MAX_PARTITIONS_PER_TOPIC:
            return (
                f"replicas.computed.partitions: {computed.partitions} exceeds the limit of "
                f"{MAX_PARTITIONS_PER_TOPIC} partitions per topic"
            )
        if computed.replication_factor > MAX_REPLICATION_FACTOR:
            return (
                f"replicas.computed.replication_factor: {computed.replication_factor} exceeds "
                f"the limit of {MAX_REPLICATION_FACTOR}"
            )
    if spec.replicas.assigned is not None:
        return validate_assigned_map(spec.replicas.assigned.replica_map(), spus)
    return None
