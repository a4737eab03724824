"""The heap freezer: long-lived objects frozen out of the collector's sight, garbage cycles
collected first, long collections logged."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import re
import time
import weakref
from collections.abc import Iterator

import pytest

from ha_sc.heap import (
    MIN_INTERVAL,
    PROMOTIONS,
    TARGET_PAUSE,
    _PauseRecorder,
    grown_enough,
    keep_collections_short,
    next_freeze_in,
)
from tests.waiting import eventually


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()  # leave the test process's collector as it was


async def test_the_heap_is_frozen_after_its_garbage_cycles_are_collected() -> None:
    a, b = Node(), Node()
    a.other, b.other = b, a  # a cycle only the collector can free
    gone = weakref.ref(a)
    kept = [Node() for _ in range(1000)]
    del a, b
    thresholds = gc.get_threshold()
    task = asyncio.create_task(keep_collections_short(interval=0.05), name="heap-freezer")
    try:
        await eventually(gc.get_freeze_count, what="a frozen heap")
        assert gc.get_threshold()[2] > 100_000  # no full collections but the freezer's
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert gone() is None  # collected before the freeze, not frozen for good
    assert gc.get_freeze_count() >= len(kept)
    assert not any(isinstance(cb, _PauseRecorder) for cb in gc.callbacks)  # removed on cancel
    assert gc.get_threshold() == thresholds


async def test_a_long_collection_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="ha_sc.heap")
    task = asyncio.create_task(keep_collections_short(interval=0.05), name="heap-freezer")
    try:
        await asyncio.sleep(0)  # the task has registered its recorder
        recorder = next(cb for cb in gc.callbacks if isinstance(cb, _PauseRecorder))
        recorder("start", {"generation": 2})
        time.sleep(0.55)  # noqa: ASYNC251 -- holding everything up, as a long collection does
        recorder("stop", {"generation": 2})
        await eventually(lambda: "paused the process" in caplog.text, what="the pause logged")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    paused = re.search(
        r"garbage collection \(generation 2\) paused the process for (\d+) ms", caplog.text
    )
    assert paused is not None and int(paused.group(1)) >= 550


def test_the_freezer_comes_sooner_while_the_heap_grows_fast() -> None:
    # 0.6 s to collect what 5 s made: the next after about 0.4 s (a 50 ms pause)
    assert next_freeze_in(5.0, 0.6, longest=5.0) == pytest.approx(5.0 * TARGET_PAUSE / 0.6)
    assert next_freeze_in(5.0, 0.6, longest=5.0) < 1.0
    # never more often than the floor, never less often than the interval
    assert next_freeze_in(0.3, 3.0, longest=5.0) == MIN_INTERVAL
    assert next_freeze_in(0.4, 0.001, longest=5.0) == 5.0
    assert next_freeze_in(5.0, 0.0, longest=5.0) == 5.0
    assert next_freeze_in(0.05, 1.0, longest=0.05) == 0.05  # a short interval stays as asked


async def test_a_burst_of_new_objects_is_frozen_without_waiting_for_the_interval() -> None:
    task = asyncio.create_task(keep_collections_short(interval=60.0), name="heap-freezer")
    try:
        await eventually(gc.get_freeze_count, what="the first freeze")
        frozen = gc.get_freeze_count()
        burst = [Node() for _ in range(300_000)]  # survivors of many young collections
        await eventually(
            lambda: gc.get_freeze_count() >= frozen + len(burst), what="the burst frozen"
        )
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def test_the_freezer_comes_once_enough_survivors_reached_the_old_generation() -> None:
    assert not grown_enough(PROMOTIONS - 1)
    assert grown_enough(PROMOTIONS)
