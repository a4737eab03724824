"""The controllers: the leader's reconciling loop, the pure reducers it runs, the typed
actions they return and the fenced writer that sends them to the KV.

Per concern: ``topics/`` (validation, replica assignment, the topic reducer),
``partitions/`` (leader election, reported offsets, the partition reducer), ``spus/``
(health, what the others read of SPUs), ``orphans`` (objects whose owner is gone).
Shared: ``actions`` (the typed write intents), ``cluster_plan`` (every reducer over one
snapshot of the cache), ``plan_scope`` and ``scope_tracker`` (what a pass must plan: what
changed since the last), ``loop`` (the loop), ``writer``, ``write_waves`` and
``write_window`` (the fenced writes), ``simulation`` (a pure model of the KV's write
rules, for tests and benchmarks). Only the pure parts are re-exported here: importing
this package does no I/O and loads no store.
"""

from ha_sc.controllers.actions import (
    Action,
    CreateObject,
    DeleteObject,
    UpdateSpec,
    UpdateStatus,
)
from ha_sc.controllers.partitions.leader_election import choose_leader, is_in_sync
from ha_sc.controllers.partitions.reducer import led_by, reduce_partition
from ha_sc.controllers.partitions.status_offsets import ReportedOffsets, with_reported_offsets
from ha_sc.controllers.simulation import ActionRefused, SimulatedCluster, simulate_actions
from ha_sc.controllers.spus.health import reduce_spu_status, spu_resolution
from ha_sc.controllers.spus.info import SpuInfo, spu_infos, spus_by_id
from ha_sc.controllers.spus.load import SpuLoad, spu_load
from ha_sc.controllers.topics.reducer import PENDING_REASON, reduce_topic
from ha_sc.controllers.topics.replica_assignment import (
    InsufficientSpus,
    assign_replicas,
    validate_assigned_map,
)
from ha_sc.controllers.topics.validation import validate_topic_spec

__all__ = [
    "PENDING_REASON",
    "Action",
    "ActionRefused",
    "CreateObject",
    "DeleteObject",
    "InsufficientSpus",
    "ReportedOffsets",
    "SimulatedCluster",
    "SpuInfo",
    "SpuLoad",
    "UpdateSpec",
    "UpdateStatus",
    "assign_replicas",
    "choose_leader",
    "is_in_sync",
    "led_by",
    "reduce_partition",
    "reduce_spu_status",
    "reduce_topic",
    "simulate_actions",
    "spu_infos",
    "spu_load",
    "spu_resolution",
    "spus_by_id",
    "validate_assigned_map",
    "validate_topic_spec",
    "with_reported_offsets",
]
