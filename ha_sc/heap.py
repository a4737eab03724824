"""Keeping CPython's cyclic garbage collector from pausing a process with a large heap.

A full collection walks every tracked object while holding the GIL. With the cache
of 100k partitions (about 3M objects) one took 1.5-1.9 s, and while the store filled
they came at every 25% of growth: the event loop and the election's renewal thread
stood still, and the leader lost its lease (an SPU decoding a 67k-replica full sync
paid the same). The objects that make up a cache live long and are replaced rather
than changed, so ``keep_collections_short`` freezes them (``gc.freeze``: out of every
later collection's sight) every ``interval``, right after collecting what is not
frozen yet, which is only what was made since the last freeze and so quick. Frozen
objects are still freed the usual way when the last reference goes; only garbage
*cycles* among them would stay, and the caches hold none.

Collections that still pause the process longer than ``PAUSE_WARNING`` are logged.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from typing import Any

log = logging.getLogger("ha_sc.heap")

FREEZE_INTERVAL = 5.0
PAUSE_WARNING = 0.2
"""Seconds of one collection past which it is logged."""


class _PauseRecorder:
    """A ``gc.callbacks`` entry noting long collections (logged later: logging from
    inside a collection could take a lock the interrupted code holds)."""

    def __init__(self) -> None:
        self.started = 0.0
        self.long: list[tuple[int, float]] = []

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self.started = time.perf_counter()
        elif (took := time.perf_counter() - self.started) > PAUSE_WARNING:
            self.long.append((int(info["generation"]), took))


async def keep_collections_short(*, interval: float = FREEZE_INTERVAL) -> None:
    """Freeze the long-lived heap now (what the imports made) and every ``interval``
    seconds after; a task, until cancelled."""
    recorder = _PauseRecorder()
    gc.callbacks.append(recorder)
    try:
        while True:
            gc.collect()
            gc.freeze()
            pauses, recorder.long = recorder.long, []
            for generation, took in pauses:
                log.warning(
                    "garbage collection (generation %d) paused the process for %.0f ms",
                    generation,
                    took * 1000,
                )
            await asyncio.sleep(interval)
    finally:
        gc.callbacks.remove(recorder)
