"""Watches the replica's event loop for stalls: a leader's lease renewals run on it, so a
loop blocked for longer than the renew deadline costs the leadership."""

from __future__ import annotations

import asyncio
import logging
import time

log = logging.getLogger("ha_sc.sc")

TICK = 0.05
WARN_AFTER = 0.2
"""A tick this much later than due is logged."""


async def watch_loop(*, tick: float = TICK, warn_after: float = WARN_AFTER) -> None:
    """Log every stall of the running loop longer than ``warn_after`` seconds (a task)."""
    while True:
        due = time.monotonic() + tick
        await asyncio.sleep(tick)
        late = time.monotonic() - due
        if late > warn_after:
            log.warning("event loop stalled for %.0f ms", late * 1000)
