"""Whether a topic's spec can be provisioned at all (Fluvio's topic spec checks)."""

from collections.abc import Sequence

from pydantic import ValidationError

from ha_sc.controllers.replica_assignment import validate_assigned_map
from ha_sc.controllers.spu_info import SpuInfo
from ha_sc.model.codec import format_validation_error
from ha_sc.model.replicas import TopicReplicas
from ha_sc.model.topic import TopicSpec


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
    if spec.replicas.assigned is not None:
        return validate_assigned_map(spec.replicas.assigned.replica_map(), spus)
    return None
