"""A topic's segment size and retention, carried by the replica specs, reach the SPU's
logs: data planes in this process on real logs (tests/dataplane_harness.py), no SC."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ha_sc.protocol import ReplicaStorage
from ha_sc.protocol.data import ErrorCode
from ha_sc.spu.dataplane_settings import DataPlaneSettings
from tests.data_client import RawDataClient, records_batch
from tests.dataplane_harness import Cluster
from tests.sc_processes import eventually

KEY = "t-0"
SEGMENT = 256
"""Bytes: every batch of a 300-byte record gets a segment of its own."""


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    settings = DataPlaneSettings(replica_wait_ms=500, retention_interval=0.2)
    planes = Cluster(tmp_path, [1, 2], settings)
    await planes.start()
    try:
        yield planes
    finally:
        await planes.stop()


def segments(cluster: Cluster, spu_id: int) -> list[str]:
    directory = cluster.spus[spu_id].settings.logs_dir / KEY
    return sorted(p.name for p in directory.glob("*.log"))


async def test_old_segments_go_by_time_on_leader_and_follower(cluster: Cluster) -> None:
    storage = ReplicaStorage(segment_size=SEGMENT, retention_time_seconds=1)
    cluster.assign(KEY, 1, [1, 2], storage)
    await eventually(
        lambda: (
            cluster.spus[1].registry_has(KEY, "leader")
            and cluster.spus[2].registry_has(KEY, "follower")
        ),
        what="spu 1 leads, spu 2 follows",
    )
    now_ms = int(time.time() * 1000)
    async with RawDataClient(cluster.spus[1].public) as client:
        for n in range(4):
            answer = await client.produce("t", 0, records_batch([b"%d" % n * 300], ts=now_ms))
            assert answer.error is None and answer.base_offset == n
    # one segment per batch: the topic's segment size, not the 1 GiB default
    assert len(segments(cluster, 1)) == 4
    await eventually(lambda: len(segments(cluster, 2)) == 4, what="follower has 4 segments")

    # after a second the closed segments (all but the active one) are past retention
    def started_at_3(spu_id: int) -> bool:
        plane = cluster.spus[spu_id].plane
        hosted = plane.registry.get(KEY) if plane is not None else None
        return hosted is not None and hosted.replica.log_start == 3

    await eventually(lambda: started_at_3(1) and started_at_3(2), what="log start 3", timeout=10)
    assert segments(cluster, 1) == ["00000000000000000003.log"]
    for spu_id in (1, 2):
        async with RawDataClient(cluster.spus[spu_id].public) as client:
            below, _ = await client.fetch("t", 0, 0)
            assert below.error is not None and below.error.code is ErrorCode.OFFSET_OUT_OF_RANGE
            kept, body = await client.fetch("t", 0, 3)
            assert kept.error is None and body


async def test_a_changed_spec_changes_the_open_logs_settings_in_place(cluster: Cluster) -> None:
    cluster.assign(KEY, 1, [1])
    await eventually(lambda: cluster.spus[1].registry_has(KEY, "leader"), what="spu 1 leads")
    plane = cluster.spus[1].plane
    assert plane is not None
    hosted = plane.registry.get(KEY)
    assert hosted is not None and hosted.leadership is not None
    leadership = hosted.leadership
    assert hosted.replica.log_settings.retention_bytes is None
    async with RawDataClient(cluster.spus[1].public) as client:
        for n in range(3):  # 1 GiB segments: all in one
            await client.produce("t", 0, records_batch([b"%d" % n * 300]))
    assert len(segments(cluster, 1)) == 1

    storage = ReplicaStorage(segment_size=SEGMENT, max_partition_size=2 * SEGMENT)
    cluster.assign(KEY, 1, [1], storage)
    await eventually(
        lambda: hosted.replica.log_settings.retention_bytes == 2 * SEGMENT, what="new settings"
    )
    assert hosted.leadership is leadership  # a storage change is no role change
    async with RawDataClient(cluster.spus[1].public) as client:
        for n in range(3, 7):
            answer = await client.produce("t", 0, records_batch([b"%d" % n * 300]))
            assert answer.error is None and answer.base_offset == n
    # the new segment size rolls (a segment per batch of about 360 bytes); retention by
    # size deletes the oldest while the log holds more than 512 bytes: the active one stays
    await eventually(lambda: hosted.replica.log_start == 6, what="log start 6", timeout=10)
    assert segments(cluster, 1) == ["00000000000000000006.log"]
