"""Retention: whole old segments go by time or size, never uncommitted or active ones."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from ha_sc.spu.storage import LogSettings, ReplicaLog, encode_records, make_batch
from ha_sc.spu.storage.retention import expired_count

HOUR = 3600.0


def batch(ts_seconds: float) -> bytes:
    return make_batch(
        encode_records([b"x" * 100]), record_count=1, first_timestamp_ms=int(ts_seconds * 1000)
    )


SIZE = len(batch(0))


def filled(directory: Path, settings: LogSettings, stamps: list[float]) -> ReplicaLog:
    """A log with one batch per segment, stamped as given, all committed."""
    log = ReplicaLog.open(directory, settings)
    for ts in stamps:
        log.append(batch(ts))
    log.set_hw(log.leo)
    return log


def test_retention_by_time_deletes_expired_segments_only(tmp_path: Path) -> None:
    settings = LogSettings(segment_bytes=SIZE, retention_seconds=HOUR)
    with filled(tmp_path, settings, [0, 100, 2 * HOUR, 50]) as log:
        assert log.enforce_retention(now=HOUR + 50) == [0]
        assert log.enforce_retention(now=HOUR + 101) == [1]
        # The next is young; the one after it is old but never jumps the queue.
        assert log.enforce_retention(now=HOUR + 1000) == []
        assert log.segment_bases() == [2, 3]
        assert log.log_start_offset == 2


def test_retention_by_size_keeps_the_log_within_the_limit(tmp_path: Path) -> None:
    settings = LogSettings(segment_bytes=SIZE, retention_bytes=2 * SIZE)
    with filled(tmp_path, settings, [0] * 5) as log:
        assert log.enforce_retention(now=0) == [0, 1, 2]
        assert log.size_bytes == 2 * SIZE
        assert log.enforce_retention(now=0) == []
    assert sorted(p.name for p in tmp_path.glob("*.log")) == [f"{n:020d}.log" for n in (3, 4)]


def test_retention_never_deletes_the_active_segment(tmp_path: Path) -> None:
    settings = LogSettings(segment_bytes=1 << 20, retention_seconds=1, retention_bytes=1)
    with filled(tmp_path, settings, [0, 0]) as log:
        assert log.enforce_retention(now=HOUR) == []
        assert log.leo == 2


def test_retention_never_deletes_uncommitted_data(tmp_path: Path) -> None:
    settings = LogSettings(segment_bytes=SIZE, retention_bytes=1)
    with filled(tmp_path, settings, [0, 0, 0, 0]) as log:
        log.set_hw(1)
        assert log.enforce_retention(now=0) == [0]
        log.set_hw(2)
        assert log.enforce_retention(now=0) == [1]


def test_retention_survives_reopen(tmp_path: Path) -> None:
    settings = LogSettings(segment_bytes=SIZE, retention_seconds=HOUR)
    filled(tmp_path, settings, [0, 0, 5 * HOUR]).close()
    with ReplicaLog.open(tmp_path, settings) as log:
        assert (log.hw, log.log_start_offset) == (3, 0)
        assert log.enforce_retention(now=2 * HOUR) == [0, 1]
    with ReplicaLog.open(tmp_path, settings) as log:
        assert (log.log_start_offset, log.leo) == (2, 3)


@dataclass
class Facts:
    size: int
    next_offset: int
    max_timestamp_ms: int | None


SEALED = [Facts(10, 1, 0), Facts(10, 2, 5_000_000), Facts(10, 3, 0)]
"""Three closed segments of 10 bytes; the middle one stamped 5000 s after the epoch."""


@pytest.mark.parametrize(
    ("hw", "seconds", "limit", "expected"),
    [
        (3, 1800, None, 1),  # by time: the first is old, the second young, so it stops
        (3, 1800, 15, 3),  # by size too: 40 bytes down to 10
        (3, None, 25, 2),  # by size alone: 40 -> 30 -> 20
        (3, None, None, 0),  # no retention
        (1, None, 15, 1),  # the second segment is not committed yet
    ],
)
def test_expired_count_combines_both_rules(
    hw: int, seconds: float | None, limit: int | None, expected: int
) -> None:
    count = expired_count(
        SEALED,
        total_bytes=40,
        hw=hw,
        now=3600.0,
        retention_seconds=seconds,
        retention_bytes=limit,
    )
    assert count == expected
