"""Topic spec, status and name rule."""

from enum import StrEnum
from typing import Self

from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from ha_sc.model.base import SpecModel, StatusModel
from ha_sc.model.names import validate_resource_name
from ha_sc.model.replicas import (
    AssignedReplicas,
    ComputedReplicas,
    PartitionMap,
    TopicReplicas,
)

__all__ = [
    "AssignedReplicas",
    "CleanupPolicy",
    "ComputedReplicas",
    "PartitionMap",
    "TopicReplicas",
    "TopicResolution",
    "TopicSpec",
    "TopicStatus",
    "validate_topic_name",
]


def validate_topic_name(name: str) -> str:
    """Check Fluvio's topic name rule (a DNS-1123 label) and return the name."""
    return validate_resource_name(name, what="topic name")


class CleanupPolicy(StrEnum):
    """How old data is removed; Fluvio's only policy drops whole expired segments."""

    SEGMENT = "segment"


class TopicSpec(SpecModel):
    """Desired state of a topic."""

    replicas: TopicReplicas
    retention_time_seconds: int | None = Field(default=None, gt=0)
    segment_size: int | None = Field(default=None, gt=0)
    """Bytes per log segment."""
    max_partition_size: int | None = Field(default=None, gt=0)
    """Bytes a partition may hold before its oldest segments are dropped."""
    cleanup_policy: CleanupPolicy | None = None

    @model_validator(mode="after")
    def _partition_holds_a_segment(self) -> Self:
        # Fluvio also refuses a partition size limit smaller than one segment.
        if (
            self.segment_size is not None
            and self.max_partition_size is not None
            and self.max_partition_size < self.segment_size
        ):
            raise PydanticCustomError(
                "max_partition_size",
                "max_partition_size {max} is less than segment_size {segment}",
                {"max": self.max_partition_size, "segment": self.segment_size},
            )
        return self

    def partition_count(self) -> int:
        """Number of partitions."""
        return self.replicas.partition_count()

    def replication_factor(self) -> int:
        """Number of replicas per partition."""
        return self.replicas.replication_factor()


class TopicResolution(StrEnum):
    """Where a topic is in its life cycle."""

    INIT = "Init"
    PENDING = "Pending"
    PROVISIONED = "Provisioned"
    INSUFFICIENT_RESOURCES = "InsufficientResources"
    INVALID_CONFIG = "InvalidConfig"
    DELETING = "Deleting"


class TopicStatus(StatusModel):
    """Observed state of a topic."""

    resolution: TopicResolution = TopicResolution.INIT
    replica_map: dict[int, list[int]] = Field(default_factory=dict)
    """Partition id -> replica SPU ids (leader first) chosen for the topic."""
    reason: str = ""

    @field_validator("replica_map")
    @classmethod
    def _sorted(cls, replica_map: dict[int, list[int]]) -> dict[int, list[int]]:
        return dict(sorted(replica_map.items()))
