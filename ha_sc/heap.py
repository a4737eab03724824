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
*cycles* among them would stay, and the caches hold none. The collector's own full
collections are switched off meanwhile: with little left unfrozen after each freeze it
started one every few thousand new objects, and a burst of them (an SPU decoding a
full sync of 40k replica specs makes about a million) cost one growing walk after
another, over a second in all.

A collection's pause grows with what was made since the last freeze, so the freezer
comes sooner while the heap grows fast (a store filling at thousands of partitions a
second made 0.5-0.7 s pauses every 5 s, each costing the leader its lease): after a
collection that took ``t`` over ``w`` seconds of growth, the next comes after
``w * TARGET_PAUSE / t`` (``next_freeze_in``), between ``MIN_INTERVAL`` and ``interval``.
The total work is the same (each object is walked once before it is frozen), in
shorter pauses.

A clock alone let a burst that follows a quiet spell (the freezer then waits its
longest) pile up seconds of growth for one collection: 0.55 s on a leader whose store
took 8000 partitions at once, and its lease with it. So the freezer also looks every
``POLL`` seconds at how many young collections have moved survivors to the old
generation since the last collection (``gc.get_count()[2]``, each moving at most a
young generation's worth) and collects once ``PROMOTIONS`` have (``grown_enough``):
what one collection walks is bounded by count, whatever the clock says.

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
NO_AUTOMATIC_FULL = 1_000_000
"""The collector's third threshold while the freezer runs (young collections before a
full one): never reached in practice."""
TARGET_PAUSE = 0.05
"""Seconds a collect-and-freeze should hold the process at most, by choosing when."""
MIN_INTERVAL = 0.25
"""The freezer's shortest wait between collections."""
POLL = 0.05
"""Seconds between two looks at how much the old generation has grown."""
PROMOTIONS = 8
"""Middle-generation collections since the last full one that call for the next (each
moves at most 700 x 10 survivors with the default thresholds: about 56k objects in
all, some 10-20 ms to walk)."""
PAUSE_WARNING = 0.5
"""Seconds of one collection past which it is logged (wall time: a loaded machine
stretches it; the first collection, of what the imports made, is not timed)."""


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
    young, middle, full = gc.get_threshold()
    gc.set_threshold(young, middle, NO_AUTOMATIC_FULL)
    gc.collect()
    gc.freeze()
    gc.callbacks.append(recorder)
    wait = interval
    try:
        while True:
            await _grown_or_waited(wait)
            started = time.perf_counter()
            gc.collect()
            gc.freeze()
            wait = next_freeze_in(wait, time.perf_counter() - started, longest=interval)
            pauses, recorder.long = recorder.long, []
            for generation, took in pauses:
                log.warning(
                    "garbage collection (generation %d) paused the process for %.0f ms",
                    generation,
                    took * 1000,
                )
    finally:
        gc.set_threshold(young, middle, full)
        gc.callbacks.remove(recorder)


async def _grown_or_waited(wait: float) -> None:
    """Return after ``wait`` seconds, or sooner once the old generation has grown enough."""
    deadline = time.monotonic() + wait
    while (left := deadline - time.monotonic()) > 0:
        if grown_enough(gc.get_count()[2]):
            return
        await asyncio.sleep(min(POLL, left))


def grown_enough(promotions: int) -> bool:
    """Whether ``promotions`` middle-generation collections since the last full one
    (each moving its survivors to the old generation) call for a collect-and-freeze now."""
    return promotions >= PROMOTIONS


def next_freeze_in(waited: float, took: float, *, longest: float) -> float:
    """Seconds until the next collect-and-freeze, after one that took ``took`` seconds
    for what ``waited`` seconds of growth made: as long as makes the next take about
    ``TARGET_PAUSE``, within ``MIN_INTERVAL`` and ``longest``."""
    if took <= 0:
        return longest
    return max(min(MIN_INTERVAL, longest), min(longest, waited * TARGET_PAUSE / took))
