"""The SPU: its control plane follows the SC leader's specs, fenced by epoch, and reports
status; its data plane (``dataplane/``) stores, serves and replicates the partitions.

``python -m ha_sc.spu --id N --sc host:port ...`` runs one (the same as
``ha-sc spu run``).
"""

from ha_sc.spu.control_state import ControlState
from ha_sc.spu.node import SpuNode
from ha_sc.spu.replica_status import (
    NoLogs,
    OffsetSource,
    ReplicaOffsets,
    StatusReporter,
    status_report,
)
from ha_sc.spu.replica_table import (
    ChangeKind,
    LocalReplica,
    ReplicaChange,
    ReplicaRole,
    ReplicaTable,
)
from ha_sc.spu.sc_link import ScLink, SessionEnd
from ha_sc.spu.settings import STATE_FILE_NAME, SpuSettings
from ha_sc.spu.state_file import StateFile, read_state

__all__ = [
    "STATE_FILE_NAME",
    "ChangeKind",
    "ControlState",
    "LocalReplica",
    "NoLogs",
    "OffsetSource",
    "ReplicaChange",
    "ReplicaOffsets",
    "ReplicaRole",
    "ReplicaTable",
    "ScLink",
    "SessionEnd",
    "SpuNode",
    "SpuSettings",
    "StateFile",
    "StatusReporter",
    "read_state",
    "status_report",
]
