"""A corrupt ``hw.checkpoint`` never stops a log from opening: it reads as no checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
