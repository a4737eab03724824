"""ReplicaLog: appends, reads, rolling, the high watermark, refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from ha_sc.model.replicas import TopicReplicas
from ha_sc.model.topic import TopicSpec
from ha_sc.spu.storage import (
    HEADER_SIZE,
    FsyncPolicy,
    LogClosed,
    LogLocked,
    LogSettings,
    MalformedBatch,
    OffsetMismatch,
    OffsetOutOfRange,
    ReplicaLog,
    decode_records,
    encode_records,
    iter_batches,
    make_batch,
    with_base_offset,
)
from ha_sc.spu.storage import segment as segment_module


def batch(*values: bytes, ts: int = 1_000) -> bytes:
    return make_batch(encode_records(values), record_count=len(values), first_timestamp_ms=ts)


def offsets_in(data: bytes) -> list[tuple[int, int]]:
    return [(b.header.base_offset, b.header.record_count) for b in iter_batches(data)]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_round_trip_assigns_offsets_per_record(tmp_path: Path) -> None:
    with ReplicaLog.open(tmp_path) as log:
        assert (log.leo, log.hw, log.log_start_offset) == (0, 0, 0)
        assert log.append(batch(b"a", b"b", b"c")) == (0, 3)
        assert log.append(batch(b"d")) == (3, 4)
        data = log.read(0, 1 << 20)
    assert offsets_in(data) == [(0, 3), (3, 1)]
    values = [r.value for b in iter_batches(data) for r in decode_records(b.payload)]
    assert values == [b"a", b"b", b"c", b"d"]


def test_leader_ignores_the_clients_base_offset(tmp_path: Path) -> None:
    with ReplicaLog.open(tmp_path) as log:
        log.append(batch(b"a"))
        assert log.append(with_base_offset(batch(b"b"), 999)) == (1, 2)
        assert offsets_in(log.read(1, 1000)) == [(1, 1)]


def test_read_from_the_middle_of_a_batch_returns_that_whole_batch(tmp_path: Path) -> None:
    with ReplicaLog.open(tmp_path) as log:
        log.append(batch(b"a", b"b", b"c"))
        log.append(batch(b"d", b"e"))
        assert offsets_in(log.read(1, 1 << 20)) == [(0, 3), (3, 2)]
        assert offsets_in(log.read(4, 1 << 20)) == [(3, 2)]
        assert log.read(5, 1 << 20) == b""


def test_read_stops_at_max_bytes_but_always_returns_one_batch(tmp_path: Path) -> None:
    one = batch(b"x" * 100)
    with ReplicaLog.open(tmp_path) as log:
        for _ in range(5):
            log.append(one)
        assert offsets_in(log.read(0, 2 * len(one) + 10)) == [(0, 1), (1, 1)]
        assert offsets_in(log.read(0, 1)) == [(0, 1)]


def test_read_with_upper_returns_only_batches_starting_below_it(tmp_path: Path) -> None:
    with ReplicaLog.open(tmp_path) as log:
        log.append(batch(b"a", b"b"))
        log.append(batch(b"c", b"d"))
        log.set_hw(2)
        assert offsets_in(log.read(0, 1 << 20, upper=log.hw)) == [(0, 2)]
        assert log.read(2, 1 << 20, upper=log.hw) == b""
        assert offsets_in(log.read(0, 1 << 20, upper=3)) == [(0, 2), (2, 2)]


def test_segments_roll_by_size_and_reads_cross_them(tmp_path: Path) -> None:
    one = batch(b"x" * 200)
    settings = LogSettings(segment_bytes=3 * len(one), index_interval_bytes=1)
    with ReplicaLog.open(tmp_path, settings) as log:
        for _ in range(7):
            log.append(one)
        assert log.segment_bases() == [0, 3, 6]
        assert offsets_in(log.read(2, 1 << 20)) == [(n, 1) for n in range(2, 7)]
        assert offsets_in(log.read(4, 1 << 20)) == [(n, 1) for n in range(4, 7)]
        assert log.size_bytes == 7 * len(one)
    names = sorted(p.name for p in tmp_path.glob("*.log"))
    assert names == [f"{n:020d}.log" for n in (0, 3, 6)]


def test_a_batch_larger_than_a_segment_gets_a_segment_of_its_own(tmp_path: Path) -> None:
    with ReplicaLog.open(tmp_path, LogSettings(segment_bytes=100)) as log:
        log.append(batch(b"x" * 500))
        log.append(batch(b"y" * 500))
        assert log.segment_bases() == [0, 1]
        assert offsets_in(log.read(0, 10)) == [(0, 1)]


def test_malformed_batch_is_refused_and_nothing_written(tmp_path: Path) -> None:
    with ReplicaLog.open(tmp_path) as log:
        log.append(batch(b"good"))
        before = (tmp_path / f"{0:020d}.log").read_bytes()
        bad = bytearray(batch(b"evil"))
        bad[-1] ^= 0xFF
        with pytest.raises(MalformedBatch, match="crc mismatch"):
            log.append(bytes(bad))
        with pytest.raises(MalformedBatch, match="shorter than"):
            log.append(b"junk")
        assert log.leo == 1
        assert (tmp_path / f"{0:020d}.log").read_bytes() == before


def test_append_replicated_needs_the_leo_as_base_offset(tmp_path: Path) -> None:
    with ReplicaLog.open(tmp_path) as log:
        assert log.append_replicated(batch(b"a", b"b")) == 2
        with pytest.raises(OffsetMismatch, match="starts at offset 5, but the log ends at 2"):
            log.append_replicated(with_base_offset(batch(b"c"), 5))
        assert log.append_replicated(with_base_offset(batch(b"c"), 2)) == 3
        assert offsets_in(log.read(0, 1 << 20)) == [(0, 2), (2, 1)]


def test_hw_is_checkpointed_at_most_every_interval_and_on_close(tmp_path: Path) -> None:
    clock = Clock()
    settings = LogSettings(hw_checkpoint_interval=5.0)
    checkpoint = tmp_path / "hw.checkpoint"
    with ReplicaLog.open(tmp_path, settings, clock=clock) as log:
        log.append(batch(b"a", b"b", b"c"))
        log.set_hw(1)
        assert not checkpoint.exists()
        clock.now = 5.0
        log.set_hw(2)
        assert b'"hw": 2' in checkpoint.read_bytes()
        log.set_hw(3)
        assert b'"hw": 2' in checkpoint.read_bytes()
        with pytest.raises(ValueError, match=r"not in 0\.\.3"):
            log.set_hw(4)
    with ReplicaLog.open(tmp_path, settings, clock=clock) as log:
        assert (log.hw, log.leo) == (3, 3)


def test_hw_after_reopen_is_at_most_the_leo(tmp_path: Path) -> None:
    with ReplicaLog.open(tmp_path) as log:
        log.append(batch(b"a", b"b"))
        log.set_hw(2)
    (tmp_path / "hw.checkpoint").write_text('{"version": 1, "hw": 50}')
    with ReplicaLog.open(tmp_path) as log:
        assert log.hw == 2


def test_a_directory_is_opened_by_one_log_at_a_time(tmp_path: Path) -> None:
    with ReplicaLog.open(tmp_path), pytest.raises(LogLocked):
        ReplicaLog.open(tmp_path)
    ReplicaLog.open(tmp_path).close()


def test_closed_log_refuses_work(tmp_path: Path) -> None:
    log = ReplicaLog.open(tmp_path)
    log.close()
    log.close()
    with pytest.raises(LogClosed):
        log.append(batch(b"a"))


def test_read_below_the_log_start_is_out_of_range(tmp_path: Path) -> None:
    one = batch(b"x" * 100)
    settings = LogSettings(segment_bytes=len(one), retention_bytes=1)
    with ReplicaLog.open(tmp_path, settings) as log:
        for _ in range(3):
            log.append(one)
        log.set_hw(3)
        assert log.enforce_retention(now=0) == [0, 1]
        with pytest.raises(OffsetOutOfRange, match="below the log start offset 2"):
            log.read(0, 1000)
        assert len(log.read(2, 1000)) == len(one) > HEADER_SIZE


@pytest.mark.parametrize(
    ("policy", "syncs_after_appends", "syncs_after_flush"),
    [
        (FsyncPolicy.ALWAYS, [1, 2, 3, 4], 5),
        (FsyncPolicy.INTERVAL, [0, 0, 1, 1], 2),
        (FsyncPolicy.NEVER, [0, 0, 0, 0], 1),
    ],
)
def test_fsync_policy_decides_when_appends_are_synced(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    policy: FsyncPolicy,
    syncs_after_appends: list[int],
    syncs_after_flush: int,
) -> None:
    syncs: list[int] = []
    monkeypatch.setattr(segment_module, "_datasync", syncs.append)
    clock = Clock()
    settings = LogSettings(fsync=policy, fsync_interval_ms=100)
    with ReplicaLog.open(tmp_path, settings, clock=clock) as log:
        seen = []
        for step in (0.05, 0.04, 0.02, 0.05):  # 50, 90, 110, 160 ms after open
            clock.now += step
            log.append(batch(b"a"))
            seen.append(len(syncs))
        assert seen == syncs_after_appends
        log.flush()
        assert len(syncs) == syncs_after_flush


def test_settings_from_a_topic_spec() -> None:
    spec = TopicSpec(
        replicas=TopicReplicas.new_computed(1, 1),
        retention_time_seconds=60,
        segment_size=4096,
        max_partition_size=8192,
    )
    settings = LogSettings.from_topic(spec, fsync=FsyncPolicy.NEVER)
    assert (settings.segment_bytes, settings.retention_seconds) == (4096, 60)
    assert (settings.retention_bytes, settings.fsync) == (8192, FsyncPolicy.NEVER)
    assert LogSettings().fsync is FsyncPolicy.ALWAYS
    with pytest.raises(ValueError, match="segment_bytes"):
        LogSettings(segment_bytes=0)
