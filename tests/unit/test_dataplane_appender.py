"""The leader's group write: each request all or nothing, in order; duplicates and gaps;
followers may read a group before the leader's fsync ends, the HW waits for it; and the
waits on a replica's offsets."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ha_sc.protocol.data import DataError, ErrorCode
from ha_sc.spu.dataplane.appender import Written, write_group
from ha_sc.spu.dataplane.leader import PartitionLeadership
from ha_sc.spu.dataplane.producer_state import ProducerTable
from ha_sc.spu.dataplane.replica import Replica
from ha_sc.spu.dataplane.waiting import ChangeSignal, CommitWaiters
from ha_sc.spu.dataplane_settings import DataPlaneSettings
from ha_sc.spu.storage import LogSettings, ReplicaLog, iter_batches
from ha_sc.spu.storage.segment import Segment
from tests.data_client import records_batch


def test_a_group_writes_each_request_whole_and_refuses_a_bad_one_alone(tmp_path: Path) -> None:
    damaged = bytearray(records_batch([b"bad"]))
    damaged[-1] ^= 1
    gap = records_batch([b"g"], producer_id=5, base_sequence=9)
    bodies = [
        records_batch([b"a", b"b"], producer_id=5, base_sequence=0),
        records_batch([b"c"]) + bytes(damaged),
        records_batch([b"d"], producer_id=5, base_sequence=2) + gap,
        records_batch([b"a", b"b"], producer_id=5, base_sequence=0),
        records_batch([b"e"], producer_id=5, base_sequence=2),
        b"",
    ]
    with ReplicaLog.open(tmp_path / "t-0") as log:
        table = ProducerTable()
        outcomes = write_group(log, table, bodies)
        stored = [
            (b.header.base_offset, b.header.record_count)
            for b in iter_batches(log.read(0, 1 << 20))
        ]
    assert outcomes[0] == Written(0, duplicate=False, commit_at=2)
    assert isinstance(outcomes[1], DataError) and "crc" in outcomes[1].message
    assert outcomes[1].code is ErrorCode.MALFORMED
    assert isinstance(outcomes[2], DataError) and outcomes[2].code is ErrorCode.OUT_OF_SEQUENCE
    assert "producer 5 sent base sequence 9, expected 3" in outcomes[2].message
    assert outcomes[3] == Written(0, duplicate=True, commit_at=2)
    assert outcomes[4] == Written(2, duplicate=False, commit_at=3)
    assert isinstance(outcomes[5], DataError) and outcomes[5].code is ErrorCode.MALFORMED
    assert stored == [(0, 2), (2, 1)]
    assert table.last_sequence(5) == 2


async def test_commit_waiters_are_released_by_the_hw_or_time_out() -> None:
    waiters = CommitWaiters()
    late = DataError(code=ErrorCode.TIMEOUT, message="late")
    already = waiters.wait(5, hw=5, timeout=10, on_timeout=late)
    soon = waiters.wait(8, hw=5, timeout=10, on_timeout=late)
    never = waiters.wait(20, hw=5, timeout=0.05, on_timeout=late)
    assert already.done() and already.result() is None
    waiters.release(7)
    assert not soon.done()
    waiters.release(9)
    assert soon.result() is None
    assert await asyncio.wait_for(never, 5) == late
    gone = waiters.wait(30, hw=9, timeout=10, on_timeout=late)
    stepped_down = DataError(code=ErrorCode.NOT_LEADER, message="demoted")
    waiters.fail_all(stepped_down)
    assert gone.result() == stepped_down and len(waiters) == 0


async def test_a_change_wakes_every_waiter_and_a_timeout_ends_a_wait() -> None:
    signal = ChangeSignal()
    waiting = [asyncio.create_task(signal.wait(10)) for _ in range(3)]
    await asyncio.sleep(0)
    signal.fire()
    await asyncio.wait_for(asyncio.gather(*waiting), 5)
    await asyncio.wait_for(signal.wait(0.01), 5)


async def test_followers_read_a_group_while_the_leader_fsyncs_it_and_the_hw_waits_for_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk_done = threading.Event()
    syncing = threading.Event()
    real_sync = Segment.sync

    def slow_disk(self: Segment, *, index: bool = False) -> None:
        syncing.set()
        assert disk_done.wait(10), "the test never let the fsync finish"
        real_sync(self, index=index)

    monkeypatch.setattr(Segment, "sync", slow_disk)
    with ThreadPoolExecutor(2) as io:
        replica = Replica(
            "t-0", tmp_path / "t-0", log_settings=LogSettings(), io=io, tail_bytes=1024
        )
        leadership = PartitionLeadership(
            replica,
            [2],
            assumed_in_sync_followers=[2],
            settings=DataPlaneSettings(),
            may_shrink=lambda: True,
        )
        answer = leadership.produce.submit(records_batch([b"a", b"b", b"c"]))
        assert await asyncio.to_thread(syncing.wait, 10)
        for _ in range(200):  # the write's news crosses from the I/O thread
            if replica.leo == 3:
                break
            await asyncio.sleep(0.01)
        assert (replica.leo, replica.synced_leo) == (3, 0)
        fetched = await asyncio.wait_for(replica.read(0, 1 << 20, replica.leo), 5)
        assert [b.header.record_count for b in iter_batches(fetched)] == [3]
        leadership.fetched(2, 3)  # the follower holds the group before the leader's fsync
        assert replica.hw == 0 and not answer.done()
        disk_done.set()
        assert await asyncio.wait_for(answer, 5) == Written(0, duplicate=False, commit_at=3)
        assert (replica.synced_leo, replica.hw) == (3, 3)
        await replica.close()
