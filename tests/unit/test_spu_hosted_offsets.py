"""What an SPU reports for a replica its data plane has not added yet."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ha_sc.spu.control_state import ControlState
from ha_sc.spu.dataplane.offsets import HostedOffsets
from ha_sc.spu.dataplane.registry import ReplicaRegistry
from ha_sc.spu.dataplane_settings import DataPlaneSettings
from ha_sc.spu.replica_status import ReplicaOffsets
from ha_sc.spu.replica_table import LocalReplica, ReplicaRole
from ha_sc.spu.storage import FsyncPolicy


def test_a_leader_not_yet_added_reports_its_checkpoint_and_no_in_sync_count(
    tmp_path: Path,
) -> None:
    with ThreadPoolExecutor(1) as io:
        settings = DataPlaneSettings(fsync=FsyncPolicy.NEVER)
        registry = ReplicaRegistry(ControlState(5001), tmp_path, settings, io)
        source = HostedOffsets(registry, tmp_path)
        leader = LocalReplica("orders-0", ReplicaRole.LEADER, 5001, (5001, 5002))
        follower = LocalReplica("orders-1", ReplicaRole.FOLLOWER, 5002, (5002, 5001))
        # lsr None: the SC keeps the count it stored (a new partition's: every follower)
        assert source.offsets(leader) == ReplicaOffsets(leo=0, hw=0, lsr=None)
        assert source.offsets(follower) == ReplicaOffsets(leo=0, hw=0, lsr=None)
