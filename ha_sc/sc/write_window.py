"""How many controller writes may be outstanding: more while the store keeps up, fewer when not.

The leader's lease renewals go through the same store as its controller writes (on
Raft, the same log). A burst of writes the store cannot absorb delays the renewals
behind it, and a renewal late past its deadline costs the leader its lease. So the
window follows the store's commit latency, the way TCP's congestion window follows
round trips: each write that commits within ``slow`` seconds widens the window by
about one per window's worth of writes (additive increase); a slower one halves it
(multiplicative decrease), at most once per ``slow`` seconds. A store that keeps
up sees ``limit`` writes in flight; an overloaded one, one at a time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class WriteWindow:
    def __init__(self, *, start: int = 16, limit: int = 64, slow: float = 0.1) -> None:
        self.size = float(start)
        self._limit = limit
        self._slow = slow
        self._in_flight = 0
        self._last_cut = 0.0
        self._changed = asyncio.Condition()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one slot for the duration of one write; its latency adjusts the window."""
        async with self._changed:
            await self._changed.wait_for(lambda: self._in_flight < int(self.size))
            self._in_flight += 1
        started = time.monotonic()
        try:
            yield
        finally:
            self.record(time.monotonic() - started)
            async with self._changed:
                self._in_flight -= 1
                self._changed.notify_all()

    def record(self, latency: float) -> None:
        """Adjust the window to one write's commit latency (seconds)."""
        now = time.monotonic()
        if latency > self._slow:
            if now - self._last_cut >= self._slow:
                self.size = max(1.0, self.size / 2)
                self._last_cut = now
        else:
            self.size = min(float(self._limit), self.size + 1.0 / self.size)
