"""Controller decisions: pure reducers from cached state to write intents.

Nothing here does I/O. The loops that watch the cache, run these reducers and
send their actions to the KV live elsewhere.
"""

from ha_sc.controllers.actions import (
    Action,
    CreateObject,
    DeleteObject,
    UpdateSpec,
    UpdateStatus,
)
from ha_sc.controllers.cluster_state import ActionRefused, ClusterState, apply_actions
from ha_sc.controllers.leader_election import choose_leader, is_in_sync
from ha_sc.controllers.partition_offsets import ReportedOffsets, with_reported_offsets
from ha_sc.controllers.partition_reducer import led_by, reduce_partition
from ha_sc.controllers.replica_assignment import (
    InsufficientSpus,
    assign_replicas,
    validate_assigned_map,
)
from ha_sc.controllers.spu_health import reduce_spu_status, spu_resolution
from ha_sc.controllers.spu_info import SpuInfo, spu_infos, spus_by_id
from ha_sc.controllers.spu_load import SpuLoad, spu_load
from ha_sc.controllers.topic_reducer import PENDING_REASON, reduce_topic
from ha_sc.controllers.topic_validation import validate_topic_spec

__all__ = [
    "PENDING_REASON",
    "Action",
    "ActionRefused",
    "ClusterState",
    "CreateObject",
    "DeleteObject",
    "InsufficientSpus",
    "ReportedOffsets",
    "SpuInfo",
    "SpuLoad",
    "UpdateSpec",
    "UpdateStatus",
    "apply_actions",
    "assign_replicas",
    "choose_leader",
    "is_in_sync",
    "led_by",
    "reduce_partition",
    "reduce_spu_status",
    "reduce_topic",
    "spu_infos",
    "spu_load",
    "spu_resolution",
    "spus_by_id",
    "validate_assigned_map",
    "validate_topic_spec",
    "with_reported_offsets",
]
