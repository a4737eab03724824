"""Partition key, spec and status."""

from enum import StrEnum
from typing import Self

from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from ha_sc.model.base import SpecModel, StatusModel
from ha_sc.model.ints import SpuId
from ha_sc.model.topic import validate_topic_name


def partition_key(topic: str, index: int) -> str:
    """The key of partition `index` of `topic`: "topic-N"."""
    if index < 0:
        raise ValueError(f"partition index must not be negative, got {index}")
    return f"{topic}-{index}"


def parse_partition_key(key: str) -> tuple[str, int]:
    """Split "topic-N" on its last '-' into (topic, N)."""
    topic, dash, index = key.rpartition("-")
    if not dash or not topic:
        raise ValueError(f"partition key {key!r} is not of the form <topic>-<index>")
    if not (index.isascii() and index.isdigit()):
        raise ValueError(f"partition key {key!r} does not end in a partition index")
    if len(index) > 1 and index[0] == "0":
        raise ValueError(f"partition key {key!r} has a leading zero in its index")
    return topic, int(index)


def validate_partition_key(key: str) -> str:
    """Check that a key is "<valid topic name>-<index>" and return it."""
    topic, _ = parse_partition_key(key)
    validate_topic_name(topic)
    return key


class PartitionSpec(SpecModel):
    """Desired state of a partition: its replica SPUs and which one leads."""

    leader: SpuId
    replicas: list[SpuId]

    @field_validator("replicas")
    @classmethod
    def _replicas_valid(cls, replicas: list[int]) -> list[int]:
        if not replicas:
            raise PydanticCustomError("no_replicas", "a partition needs at least one replica")
        if len(set(replicas)) != len(replicas):
            raise PydanticCustomError(
                "duplicate_replica", "replicas {replicas} repeat an spu id", {"replicas": replicas}
            )
        return replicas

    @model_validator(mode="after")
    def _leader_is_replica(self) -> Self:
        if self.leader not in self.replicas:
            raise PydanticCustomError(
                "leader_not_replica",
                "leader {leader} is not one of the replicas {replicas}",
                {"leader": self.leader, "replicas": self.replicas},
            )
        return self

    def followers(self) -> list[int]:
        """The replicas other than the leader."""
        return [spu for spu in self.replicas if spu != self.leader]


class PartitionResolution(StrEnum):
    """Whether a partition has a serving leader."""

    OFFLINE = "Offline"
    ONLINE = "Online"
    LEADER_OFFLINE = "LeaderOffline"
    ELECTION_LEADER_FOUND = "ElectionLeaderFound"


class ReplicaStatus(StatusModel):
    """Offsets one replica reported: high watermark and log end offset."""

    spu: int
    hw: int = -1
    leo: int = -1


class PartitionStatus(StatusModel):
    """Observed state of a partition."""

    resolution: PartitionResolution = PartitionResolution.OFFLINE
    leader: ReplicaStatus = ReplicaStatus(spu=-1)
    replicas: list[ReplicaStatus] = Field(default_factory=list)
    """Followers' statuses."""
    lsr: int = 0
    """Live replicas: followers in sync with the leader."""
    size: int = 0
    """Bytes stored by the leader."""
