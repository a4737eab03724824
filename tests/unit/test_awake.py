"""Awake time: wall time less the event loop's own stalls, and waits timed in it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import pytest

from ha_sc import awake


def stall(seconds: float) -> None:
    """Block the event loop (the stall a long synchronous step makes)."""
    time.sleep(seconds)


@pytest.fixture
async def watched() -> AsyncIterator[None]:
    task = asyncio.create_task(awake.watch_loop(), name="loop-monitor")
    await asyncio.sleep(0.06)  # ticking
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_unwatched_awake_time_is_wall_time() -> None:
    before_wall, before = time.monotonic(), awake.now()
    stall(0.3)
    assert awake.now() - before == pytest.approx(time.monotonic() - before_wall, abs=0.02)


async def test_a_stall_is_left_out_even_before_the_watcher_has_run_again(
    watched: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="ha_sc.loop")
    before = awake.now()
    stall(0.6)  # the loop stalls
    assert awake.now() - before <= awake.AWAKE_SLACK + 0.05  # at once, watcher not run yet
    await asyncio.sleep(0.1)
    assert awake.now() - before <= awake.AWAKE_SLACK + 0.2
    assert "event loop stalled for" in caplog.text
    stall(0.1)  # shorter than the slack: awake
    assert awake.now() - before >= 0.1 + 0.1


async def test_within_gives_its_time_in_awake_time(watched: None) -> None:
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()

    def stall_then_feed() -> None:
        stall(0.6)  # twice the allowed wait, all of it the loop's own stall
        reader.feed_data(b"arrived during the stall")

    loop.call_later(0.05, stall_then_feed)
    assert await awake.within(0.3, lambda: reader.read(100)) == b"arrived during the stall"


async def test_within_times_out_after_that_much_awake_time(watched: None) -> None:
    reader = asyncio.StreamReader()
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await awake.within(0.3, lambda: reader.read(100))
    assert 0.3 <= time.monotonic() - started < 0.6


async def test_within_lets_an_attempts_own_timeout_through() -> None:
    async def attempt() -> None:
        raise TimeoutError("the attempt's own")

    with pytest.raises(TimeoutError, match="the attempt's own"):
        await awake.within(5, attempt)
