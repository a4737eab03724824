"""The leader's group write: each request all or nothing, in order; duplicates and gaps;
and the waits on a replica's offsets."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ha_sc.protocol.data import DataError, ErrorCode
from ha_sc.spu.dataplane.appender import Written, write_group
from ha_sc.spu.dataplane.producer_state import ProducerTable
from ha_sc.spu.dataplane.waiting import ChangeSignal, CommitWaiters
from ha_sc.spu.storage import ReplicaLog, iter_batches
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
