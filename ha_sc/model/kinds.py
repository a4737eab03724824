"""The registry of stored kinds: KV key segment, models and key rule of each."""

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeAlias

from ha_sc.model.base import SpecModel, StatusModel
from ha_sc.model.meta import StoredObject
from ha_sc.model.names import validate_resource_name, validate_spu_name
from ha_sc.model.partition import PartitionSpec, PartitionStatus, validate_partition_key
from ha_sc.model.spu import SpuSpec, SpuStatus
from ha_sc.model.spu_group import SpuGroupSpec, SpuGroupStatus
from ha_sc.model.topic import TopicSpec, TopicStatus, validate_topic_name

Spu: TypeAlias = StoredObject[SpuSpec, SpuStatus]
SpuGroup: TypeAlias = StoredObject[SpuGroupSpec, SpuGroupStatus]
Topic: TypeAlias = StoredObject[TopicSpec, TopicStatus]
Partition: TypeAlias = StoredObject[PartitionSpec, PartitionStatus]


class Kind(StrEnum):
    """A stored kind; the value is its KV key segment: /ha-sc/<kind>/<key>."""

    SPU = "spus"
    SPU_GROUP = "spugroups"
    TOPIC = "topics"
    PARTITION = "partitions"


def _validate_spu_group_name(name: str) -> str:
    return validate_resource_name(name, what="spu group name")


@dataclass(frozen=True)
class KindInfo:
    """What the store needs to know about a kind."""

    kind: Kind
    spec_type: type[SpecModel]
    status_type: type[StatusModel]
    object_type: type[StoredObject[Any, Any]]
    validate_key: Callable[[str], str]
    """Returns the key or raises ValueError naming the problem."""


_KINDS: dict[Kind, KindInfo] = {
    Kind.SPU: KindInfo(Kind.SPU, SpuSpec, SpuStatus, Spu, validate_spu_name),
    Kind.SPU_GROUP: KindInfo(
        Kind.SPU_GROUP, SpuGroupSpec, SpuGroupStatus, SpuGroup, _validate_spu_group_name
    ),
    Kind.TOPIC: KindInfo(Kind.TOPIC, TopicSpec, TopicStatus, Topic, validate_topic_name),
    Kind.PARTITION: KindInfo(
        Kind.PARTITION, PartitionSpec, PartitionStatus, Partition, validate_partition_key
    ),
}


def kind_info(kind: Kind) -> KindInfo:
    """The registry entry of a kind."""
    return _KINDS[kind]
