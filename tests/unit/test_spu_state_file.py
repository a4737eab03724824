"""The SPU's state file: written after changes at most once per interval, read back on
start for the highest epoch."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from pathlib import Path

import pytest

from ha_sc.spu import SpuSettings, StateFile, read_state
from ha_sc.spu import state_file as state_file_module
from ha_sc.spu.node import restored_epoch


@pytest.mark.looptime
async def test_changes_are_written_at_most_once_per_interval(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the interval alone: a write's real cost (an fsync on a busy disk) would stretch it
    monkeypatch.setattr(state_file_module, "COST_RATIO", 0)
    counter = {"n": 0}
    path = tmp_path / "spu-state.json"
    state_file = StateFile(path, lambda: {"id": 1, "n": counter["n"]}, interval=0.1)
    task = asyncio.create_task(state_file.run(), name="spu-state-file")
    try:
        for _ in range(30):  # 0.3 s (loop time) of changes every 10 ms
            counter["n"] += 1
            state_file.mark_changed()
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.15)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert state_file.writes == 4  # at 0, 0.1, 0.2 and 0.3 s (loop time): not one per change
    doc = read_state(path)
    assert doc is not None and doc["n"] == 30  # the last change made it
    assert not (tmp_path / "spu-state.json.tmp").exists()  # replaced, not left aside


@pytest.mark.looptime
async def test_a_costly_document_is_written_less_often(tmp_path: Path) -> None:
    def slow_document() -> dict[str, object]:
        time.sleep(0.02)  # a large SPU's document: each write takes 20 ms
        return {"id": 1}

    state_file = StateFile(tmp_path / "spu-state.json", slow_document, interval=0.01)
    task = asyncio.create_task(state_file.run(), name="spu-state-file")
    try:
        for _ in range(50):  # 0.5 s of changes every 10 ms
            state_file.mark_changed()
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    # 20 ms writes are followed by 0.4 s pauses: not one write per 30 ms
    assert 1 <= state_file.writes <= 3


def test_an_unreadable_file_reads_as_none(tmp_path: Path) -> None:
    path = tmp_path / "spu-state.json"
    assert read_state(path) is None
    path.write_text("{half")
    assert read_state(path) is None
    path.write_text("[1]")
    assert read_state(path) is None


def test_the_highest_epoch_is_restored_for_the_same_spu_only(tmp_path: Path) -> None:
    settings = SpuSettings(spu_id=5001, sc_addresses=("127.0.0.1:9004",), data_dir=tmp_path)
    assert restored_epoch(settings) == 0
    settings.state_file.write_text(json.dumps({"id": 5001, "highest_epoch": 9}))
    assert restored_epoch(settings) == 9
    settings.state_file.write_text(json.dumps({"id": 5002, "highest_epoch": 9}))
    assert restored_epoch(settings) == 0


def test_the_state_file_is_flushed_with_its_directory_before_write_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    flushed: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        flushed.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    path = tmp_path / "spu-state.json"
    StateFile(path, lambda: {"id": 1, "highest_epoch": 7}, interval=0.1).write()
    assert len(flushed) == 2  # the document, then the directory holding its new name
    doc = read_state(path)
    assert doc is not None and doc["highest_epoch"] == 7
