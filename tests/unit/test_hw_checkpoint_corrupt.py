"""A corrupt ``hw.checkpoint`` never stops a log from opening: it reads as no checkpoint."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ha_sc.spu.storage import LogSettings, ReplicaLog, encode_records, make_batch
from ha_sc.spu.storage.checkpoint import read_hw, write_hw
from ha_sc.spu.storage.layout import CHECKPOINT_NAME


@pytest.mark.parametrize(
    "content",
    [b"[1, 2]", b'"hw"', b"7", b"null", b"[" * 100_000, b"\xff\xfe", b'{"version": 1, "hw": true}'],
)
def test_a_malformed_checkpoint_reads_as_none(tmp_path: Path, content: bytes) -> None:
    (tmp_path / CHECKPOINT_NAME).write_bytes(content)
    assert read_hw(tmp_path) is None


def test_a_good_checkpoint_reads_back(tmp_path: Path) -> None:
    write_hw(tmp_path, 42)
    assert read_hw(tmp_path) == 42


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(content=st.binary(max_size=256))
def test_arbitrary_checkpoint_bytes_never_raise(tmp_path: Path, content: bytes) -> None:
    (tmp_path / CHECKPOINT_NAME).write_bytes(content)
    hw = read_hw(tmp_path)
    assert hw is None or hw >= 0


@pytest.mark.parametrize("content", [b"[1, 2]", b"{not json", b'{"version": 1, "hw": -5}'])
def test_a_replica_log_opens_over_a_corrupt_checkpoint_with_the_hw_at_its_start(
    tmp_path: Path, content: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    one = make_batch(encode_records([b"x" * 100]), record_count=1, first_timestamp_ms=1_000)
    settings = LogSettings(segment_bytes=len(one), retention_bytes=1)
    with ReplicaLog.open(tmp_path, settings) as log:
        for _ in range(4):
            log.append(one)
        log.set_hw(4)
        log.enforce_retention(now=0)
        assert log.log_start_offset == 3
    (tmp_path / CHECKPOINT_NAME).write_bytes(content)
    with caplog.at_level(logging.WARNING, logger="ha_sc"):
        log = ReplicaLog.open(tmp_path, settings)
    with log:
        assert (log.log_start_offset, log.hw, log.leo) == (3, 3, 4)
        assert len(log.read(3, 1 << 20)) == len(one)  # the records kept are readable
        assert log.append(one) == (4, 5)  # and the log takes appends
        log.set_hw(5)
    assert any(CHECKPOINT_NAME in r.getMessage() for r in caplog.records)
    assert read_hw(tmp_path) == 5  # rewritten on close
