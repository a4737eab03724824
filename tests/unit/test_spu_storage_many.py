"""ReplicaLog group writes (``append_many``, ``append_replicated_many``) and reading the
headers of its tail (``tail_headers``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ha_sc.spu.storage import (
    FsyncPolicy,
    LogSettings,
    OffsetMismatch,
    RawBatch,
    ReplicaLog,
    encode_records,
    iter_batches,
    make_batch,
)
from ha_sc.spu.storage.segment import Segment


def batch(count: int, *, pid: int = 0, seq: int = -1, size: int = 10) -> bytes:
    payload = encode_records([b"x" * size] * count)
    return make_batch(
        payload, record_count=count, first_timestamp_ms=1, producer_id=pid, base_sequence=seq
    )


def raws(*batches: bytes) -> list[RawBatch]:
    return list(iter_batches(b"".join(batches)))


def test_append_many_gives_consecutive_offsets_and_syncs_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    syncs: list[int] = []
    original = Segment.sync

    def counting(self: Segment, *, index: bool = False) -> None:
        syncs.append(1)
        original(self, index=index)

    monkeypatch.setattr(Segment, "sync", counting)
    with ReplicaLog.open(tmp_path / "t-0") as log:
        assert log.append_many(raws(batch(3), batch(1), batch(2))) == [0, 3, 4]
        assert log.leo == 6 and len(syncs) == 1
        stored = [
            (b.header.base_offset, b.header.record_count)
            for b in iter_batches(log.read(0, 1 << 20))
        ]
        assert stored == [(0, 3), (3, 1), (4, 2)]
        assert log.append_many([]) == []


def test_an_append_may_leave_its_fsync_to_sync_which_follows_the_policy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    syncs: list[int] = []
    original = Segment.sync

    def counting(self: Segment, *, index: bool = False) -> None:
        syncs.append(1)
        original(self, index=index)

    monkeypatch.setattr(Segment, "sync", counting)
    with ReplicaLog.open(tmp_path / "always") as log:
        assert log.append_many(raws(batch(2)), sync=False) == [0]
        assert log.leo == 2 and syncs == []
        assert [b.header.record_count for b in iter_batches(log.read(0, 1 << 20))] == [2]
        log.sync()
        assert len(syncs) == 1
    syncs.clear()
    never = LogSettings(fsync=FsyncPolicy.NEVER)
    with ReplicaLog.open(tmp_path / "never", never) as log:
        log.append_many(raws(batch(2)), sync=False)
        log.sync()
        assert syncs == []


def test_replicated_batches_keep_their_offsets_and_must_follow_on(tmp_path: Path) -> None:
    with ReplicaLog.open(tmp_path / "leader") as leader:
        leader.append_many(raws(batch(2), batch(3), batch(1)))
        shipped = leader.read(0, 1 << 20)
    with ReplicaLog.open(tmp_path / "follower") as follower:
        assert follower.append_replicated_many(list(iter_batches(shipped))) == 6
        assert follower.read(0, 1 << 20) == shipped
        with pytest.raises(OffsetMismatch):
            follower.append_replicated_many(list(iter_batches(shipped)))


def test_tail_headers_reads_back_the_last_batches_across_segments(tmp_path: Path) -> None:
    settings = LogSettings(segment_bytes=1000, index_interval_bytes=100)
    with ReplicaLog.open(tmp_path / "t-0", settings) as log:
        for n in range(40):
            log.append_many(raws(batch(2, pid=5, seq=2 * n, size=30)))
        assert len(log.segment_bases()) > 2
        every = log.tail_headers(1 << 30)
        assert [h.base_offset for h in every] == list(range(0, 80, 2))
        tail = log.tail_headers(500)
        assert tail and tail == every[-len(tail) :]
        assert 500 <= sum(h.size for h in tail) < 500 + 100 + 2 * every[0].size


def test_a_group_rolls_segments_where_single_appends_would_and_reopens_whole(
    tmp_path: Path,
) -> None:
    settings = LogSettings(segment_bytes=1000, index_interval_bytes=100)
    group = raws(*(batch(2, size=30) for _ in range(40)))
    with ReplicaLog.open(tmp_path / "group", settings) as grouped:
        grouped.append_many(group)
        bases = grouped.segment_bases()
        data = grouped.read(0, 1 << 30)
    with ReplicaLog.open(tmp_path / "single", settings) as single:
        for one in group:
            single.append_many([one])
        assert single.segment_bases() == bases and single.read(0, 1 << 30) == data
    with ReplicaLog.open(tmp_path / "group", settings) as reopened:
        assert reopened.leo == 80 and reopened.segment_bases() == bases
        assert reopened.read(36, 1 << 30) == data[18 * len(group[0].data) :]
        assert [b.header.base_offset for b in iter_batches(reopened.read(37, 100))] == [36]
