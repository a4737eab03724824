"""Time as this process's event loop lived it: wall time less the loop's own stalls.

A peer's silence timed in wall time blames the peer for the time this process could
not listen. Filling the store to 74k partitions, a new SC leader stalled about 2 s per
SPU full sync it built; each stall ran every other SPU's 1.2 s silence out, they were
taken for offline, re-registered, and each re-registration cost another full sync and
another stall, round after round (and SPUs, stalled applying them, did the same to the
SC). Silence measured by ``now`` counts only the time the loop was awake to hear.

``watch_loop`` (a task in every SC replica and SPU) ticks every ``TICK`` s; a tick
later than ``AWAKE_SLACK`` counts the excess as a stall. ``now`` also discounts a stall
still in progress (the tick not yet run), so a deadline checked right after a stall,
before the watcher's own turn, already sees it. Without the watcher running ``now``
is plain monotonic time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

log = logging.getLogger("ha_sc.loop")

TICK = 0.05
AWAKE_SLACK = 0.15
"""A tick this much after the last one is still the loop awake; the excess is a stall."""
WARN_AFTER = 0.2
"""A stall this long is logged."""


class _Clock:
    def __init__(self) -> None:
        self.stalled = 0.0
        self.last_tick: float | None = None
        self.watchers = 0

    def now(self) -> float:
        wall = time.monotonic()
        if self.last_tick is None:
            return wall - self.stalled
        return wall - self.stalled - max(0.0, wall - self.last_tick - AWAKE_SLACK)


_clock = _Clock()


def now() -> float:
    """Seconds (monotonic, any origin) the loop has been awake for."""
    return _clock.now()


async def watch_loop(*, tick: float = TICK, warn_after: float = WARN_AFTER) -> None:
    """Count the running loop's stalls (for ``now``) and log the long ones; a task.

    Several may run in one process (replicas and SPUs started by one test): they
    share the count, each tick measured from whichever ticked last.
    """
    _clock.watchers += 1
    if _clock.last_tick is None:
        _clock.last_tick = time.monotonic()
    try:
        while True:
            due = time.monotonic() + tick
            await asyncio.sleep(tick)
            wall = time.monotonic()
            last = _clock.last_tick if _clock.last_tick is not None else wall
            _clock.stalled += max(0.0, wall - last - AWAKE_SLACK)
            _clock.last_tick = wall
            if wall - due > warn_after:
                log.warning("event loop stalled for %.0f ms", (wall - due) * 1000)
    finally:
        _clock.watchers -= 1
        if not _clock.watchers:
            _clock.last_tick = None


async def within(seconds: float, attempt: Callable[[], Awaitable[T]]) -> T:
    """``attempt()``'s result, given ``seconds`` of awake time; TimeoutError after.

    On a wall-clock timeout that the loop's stalls account for, ``attempt`` is made
    again: it must be safe to cancel and repeat (a stream read or drain is: what
    arrived stays buffered).
    """
    deadline = now() + seconds
    while True:
        timeout = asyncio.timeout(max(0.0, deadline - now()))
        try:
            async with timeout:
                return await attempt()
        except TimeoutError:
            if not timeout.expired() or now() >= deadline:
                raise
