"""Cluster object model: specs, statuses, keys and the stored value format."""

from ha_sc.model.codec import (
    InvalidObject,
    decode_object,
    encode_object,
    encode_value,
    format_validation_error,
)
from ha_sc.model.kinds import Kind, KindInfo, Partition, Spu, SpuGroup, Topic, kind_info
from ha_sc.model.meta import ObjectMeta, OwnerRef, StoredObject
from ha_sc.model.names import validate_resource_name, validate_spu_name
from ha_sc.model.partition import (
    PartitionResolution,
    PartitionSpec,
    PartitionStatus,
    ReplicaStatus,
    parse_partition_key,
    partition_key,
    validate_partition_key,
)
from ha_sc.model.replicas import AssignedReplicas, ComputedReplicas, PartitionMap, TopicReplicas
from ha_sc.model.spu import (
    CustomSpuSpec,
    Endpoint,
    SpuResolution,
    SpuSpec,
    SpuStatus,
    SpuType,
)
from ha_sc.model.spu_group import (
    SpuConfig,
    SpuGroupResolution,
    SpuGroupSpec,
    SpuGroupStatus,
    StorageConfig,
)
from ha_sc.model.topic import (
    CleanupPolicy,
    TopicResolution,
    TopicSpec,
    TopicStatus,
    validate_topic_name,
)

__all__ = [
    "AssignedReplicas",
    "CleanupPolicy",
    "ComputedReplicas",
    "CustomSpuSpec",
    "Endpoint",
    "InvalidObject",
    "Kind",
    "KindInfo",
    "ObjectMeta",
    "OwnerRef",
    "Partition",
    "PartitionMap",
    "PartitionResolution",
    "PartitionSpec",
    "PartitionStatus",
    "ReplicaStatus",
    "Spu",
    "SpuConfig",
    "SpuGroup",
    "SpuGroupResolution",
    "SpuGroupSpec",
    "SpuGroupStatus",
    "SpuResolution",
    "SpuSpec",
    "SpuStatus",
    "SpuType",
    "StorageConfig",
    "StoredObject",
    "Topic",
    "TopicReplicas",
    "TopicResolution",
    "TopicSpec",
    "TopicStatus",
    "decode_object",
    "encode_object",
    "encode_value",
    "format_validation_error",
    "kind_info",
    "parse_partition_key",
    "partition_key",
    "validate_partition_key",
    "validate_resource_name",
    "validate_spu_name",
    "validate_topic_name",
]
