"""Reopening a log: torn tails cut, indexes rebuilt; and truncate_to."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from ha_sc.spu.storage import (
    CorruptLog,
    LogSettings,
    OffsetOutOfRange,
    ReplicaLog,
    encode_records,
    iter_batches,
    make_batch,
)
from ha_sc.spu.storage.index import ENTRY


def batch(*values: bytes) -> bytes:
    return make_batch(encode_records(values), record_count=len(values), first_timestamp_ms=1)


def offsets_in(data: bytes) -> list[tuple[int, int]]:
    return [(b.header.base_offset, b.header.record_count) for b in iter_batches(data)]


def segment(directory: Path, base: int, suffix: str = ".log") -> Path:
    return directory / f"{base:020d}{suffix}"


def three_batches(directory: Path, settings: LogSettings | None = None) -> bytes:
    with ReplicaLog.open(directory, settings) as log:
        log.append(batch(b"a", b"b"))
        log.append(batch(b"c"))
        log.append(batch(b"d", b"e", b"f"))
        return log.read(0, 1 << 20)


def assert_recovered_to(directory: Path, leo: int, good: bytes) -> None:
    """The log holds exactly ``good`` with LEO ``leo``, and appends continue after it."""
    with ReplicaLog.open(directory) as log:
        assert log.leo == leo
        assert log.read(0, 1 << 20) == good
        assert log.append(batch(b"next")) == (leo, leo + 1)
    with ReplicaLog.open(directory) as log:
        assert offsets_in(log.read(0, 1 << 20))[-1] == (leo, 1)


@pytest.mark.parametrize("cut", [1, 10, 56, 60])
def test_partial_last_batch_is_truncated(
    tmp_path: Path, cut: int, caplog: pytest.LogCaptureFixture
) -> None:
    data = three_batches(tmp_path)
    last = len(batch(b"d", b"e", b"f"))
    with segment(tmp_path, 0).open("r+b") as f:
        f.truncate(len(data) - last + cut)
    with caplog.at_level(logging.WARNING, "ha_sc.spu.storage"):
        assert_recovered_to(tmp_path, 3, data[:-last])
    assert "torn tail" in caplog.text


def test_corrupt_last_byte_is_truncated(tmp_path: Path) -> None:
    data = three_batches(tmp_path)
    with segment(tmp_path, 0).open("r+b") as f:
        f.seek(len(data) - 1)
        f.write(bytes([data[-1] ^ 0x55]))
    assert_recovered_to(tmp_path, 3, data[: -len(batch(b"d", b"e", b"f"))])


def test_garbage_after_the_last_batch_is_truncated(tmp_path: Path) -> None:
    data = three_batches(tmp_path)
    with segment(tmp_path, 0).open("ab") as f:
        f.write(b"\0" * 100)
    assert_recovered_to(tmp_path, 6, data)


def test_missing_or_damaged_index_is_rebuilt(tmp_path: Path) -> None:
    one = batch(b"x" * 100)
    settings = LogSettings(segment_bytes=4 * len(one), index_interval_bytes=1)
    with ReplicaLog.open(tmp_path, settings) as log:
        for _ in range(10):
            log.append(one)
        expected = log.read(5, 1 << 20)
    sealed, active = segment(tmp_path, 0, ".index"), segment(tmp_path, 8, ".index")
    want_sealed, want_active = sealed.read_bytes(), active.read_bytes()
    assert len(want_sealed) == 4 * ENTRY.size
    sealed.unlink()
    segment(tmp_path, 4, ".index").write_bytes(b"\x01\x02\x03")
    active.write_bytes(want_active + ENTRY.pack(5, 10 * len(one)))  # past the end
    with ReplicaLog.open(tmp_path, settings) as log:
        assert log.read(5, 1 << 20) == expected
        assert offsets_in(log.read(1, 1 << 20))[0] == (1, 1)
    assert sealed.read_bytes() == want_sealed
    assert active.read_bytes() == want_active
    assert len(segment(tmp_path, 4, ".index").read_bytes()) == 4 * ENTRY.size


def test_damaged_sealed_segment_is_reported_not_repaired(tmp_path: Path) -> None:
    one = batch(b"x" * 100)
    with ReplicaLog.open(tmp_path, LogSettings(segment_bytes=len(one))) as log:
        log.append(one)
        log.append(one)
    with segment(tmp_path, 0).open("r+b") as f:
        f.truncate(len(one) - 1)
    segment(tmp_path, 0, ".index").unlink()
    with pytest.raises(CorruptLog, match=r"00000000000000000000\.log"):
        ReplicaLog.open(tmp_path)


def test_leftovers_of_a_crash_are_removed(tmp_path: Path) -> None:
    data = three_batches(tmp_path)
    segment(tmp_path, 77, ".index").write_bytes(b"")
    (tmp_path / "hw.checkpoint.tmp").write_bytes(b"{")
    assert_recovered_to(tmp_path, 6, data)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f"{0:020d}.index",
        f"{0:020d}.log",
        "hw.checkpoint",
        "replica.lock",
    ]


def test_empty_last_segment_left_by_a_crash_while_rolling(tmp_path: Path) -> None:
    data = three_batches(tmp_path)
    segment(tmp_path, 6).write_bytes(b"")
    with ReplicaLog.open(tmp_path) as log:
        assert (log.leo, log.segment_bases()) == (6, [0, 6])
        assert log.read(0, 1 << 20) == data
        assert log.append(batch(b"g")) == (6, 7)


def test_truncate_to_inside_a_batch_drops_the_whole_batch(tmp_path: Path) -> None:
    data = three_batches(tmp_path)
    with ReplicaLog.open(tmp_path) as log:
        log.set_hw(6)
        assert log.truncate_to(4) == 3
        assert log.hw == 3
        assert log.read(0, 1 << 20) == data[: -len(batch(b"d", b"e", b"f"))]
        assert log.truncate_to(2) == 2
        assert log.append(batch(b"z")) == (2, 3)
    with ReplicaLog.open(tmp_path) as log:
        assert offsets_in(log.read(0, 1 << 20)) == [(0, 2), (2, 1)]
        assert log.truncate_to(100) == 3
        assert log.truncate_to(0) == 0
        assert log.read(0, 1 << 20) == b""


def test_hw_lowered_by_truncation_is_checkpointed_at_once(tmp_path: Path) -> None:
    """Else records appended after the truncation would count as committed on reopen."""
    with ReplicaLog.open(tmp_path, LogSettings(hw_checkpoint_interval=3600)) as log:
        log.append(batch(b"a", b"b"))
        log.append(batch(b"c", b"d"))
        log.set_hw(4)
        log.flush()
        log.truncate_to(2)
        log.append(batch(b"new", b"er"))
        assert (log.hw, log.leo) == (2, 4)
        checkpoint = (tmp_path / "hw.checkpoint").read_bytes()
    assert b'"hw": 2' in checkpoint


def test_truncate_to_deletes_later_segments(tmp_path: Path) -> None:
    one = batch(b"x" * 100)
    with ReplicaLog.open(tmp_path, LogSettings(segment_bytes=2 * len(one))) as log:
        for _ in range(7):
            log.append(one)
        assert log.segment_bases() == [0, 2, 4, 6]
        assert log.truncate_to(4) == 4
        assert log.segment_bases() == [0, 2, 4]
        assert log.truncate_to(3) == 3
        assert log.segment_bases() == [0, 2]
        assert log.append(one) == (3, 4)
    assert not segment(tmp_path, 4).exists()
    assert not segment(tmp_path, 6, ".index").exists()


def test_truncate_below_the_log_start_is_refused(tmp_path: Path) -> None:
    one = batch(b"x" * 100)
    settings = LogSettings(segment_bytes=len(one), retention_bytes=1)
    with ReplicaLog.open(tmp_path, settings) as log:
        for _ in range(3):
            log.append(one)
        log.set_hw(3)
        log.enforce_retention(now=0)
        with pytest.raises(OffsetOutOfRange):
            log.truncate_to(1)
