"""The log settings an SPU's replica gets from its spec's storage settings."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ha_sc.protocol import ReplicaStorage
from ha_sc.spu.control_state import ControlState
from ha_sc.spu.dataplane.registry import ReplicaRegistry
from ha_sc.spu.dataplane_settings import DataPlaneSettings
from ha_sc.spu.storage import FsyncPolicy, LogSettings
from ha_sc.spu.storage.settings import MAX_SEGMENT_BYTES


def registry(tmp_path: Path, io: ThreadPoolExecutor) -> ReplicaRegistry:
    settings = DataPlaneSettings(fsync=FsyncPolicy.NEVER)
    return ReplicaRegistry(ControlState(5001), tmp_path, settings, io)


def test_the_topics_settings_become_the_logs_and_the_spu_keeps_its_fsync(
    tmp_path: Path,
) -> None:
    with ThreadPoolExecutor(1) as io:
        plane = registry(tmp_path, io)
        assert plane.log_settings(ReplicaStorage()) == LogSettings(fsync=FsyncPolicy.NEVER)
        storage = ReplicaStorage(
            segment_size=4096, retention_time_seconds=30, max_partition_size=1 << 20
        )
        assert plane.log_settings(storage) == LogSettings(
            segment_bytes=4096,
            retention_seconds=30,
            retention_bytes=1 << 20,
            fsync=FsyncPolicy.NEVER,
        )
        # a segment size past what the index can address is capped
        huge = plane.log_settings(ReplicaStorage(segment_size=2 * MAX_SEGMENT_BYTES))
        assert huge.segment_bytes == MAX_SEGMENT_BYTES
