"""How many controller writes may be outstanding: more while the store keeps up, fewer when not.

The leader's lease renewals go through the same store as its controller writes (on
Raft, the same log). A burst of writes the store cannot absorb delays the renewals
behind it, and a renewal late past its deadline costs the leader its lease. So the
window follows the store's commit latency, the way TCP's congestion window follows
round trips: each write that commits within ``slow`` seconds widens the window by
about one per window's worth of writes (additive increase); a slower one halves it
(multiplicative decrease), at most once per ``slow`` seconds. A store that keeps
up sees ``limit`` writes in flight; an overloaded one, one at a time.

Writes waiting for a slot queue in arrival order, and a slot freed wakes only the
write it goes to: a wave of thousands of writes costs each one wake-up, not one per
slot freed (waking every waiter on each release made a 1000-partition topic cost
about a million wake-ups, and held the leader's event loop for seconds).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class WriteWindow:
    def __init__(self, *, start: int = 16, limit: int = 64, slow: float = 0.1) -> None:
        self.size = float(start)
        self._limit = limit
        self._slow = slow
        self._in_flight = 0
        self._last_cut = 0.0
        self._waiting: deque[asyncio.Future[None]] = deque()

    @property
    def limit(self) -> int:
        """The most writes the window ever lets out at once."""
        return self._limit

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def waiting(self) -> int:
        return sum(not future.done() for future in self._waiting)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one slot for the duration of one write; its latency adjusts the window."""
        await self._acquire()
        started = time.monotonic()
        try:
            yield
        finally:
            self.record(time.monotonic() - started)
            self._in_flight -= 1
            self._admit()

    async def _acquire(self) -> None:
        if not self._waiting and self._in_flight < int(self.size):
            self._in_flight += 1
            return
        future = asyncio.get_running_loop().create_future()
        self._waiting.append(future)
        try:
            await future  # the slot is counted as ours when this completes
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self._in_flight -= 1  # given a slot, then cancelled: pass it on
                self._admit()
            raise

    def _admit(self) -> None:
        """Hand the free slots to the longest-waiting writes."""
        while self._waiting and self._in_flight < int(self.size):
            future = self._waiting.popleft()
            if not future.done():
                self._in_flight += 1
                future.set_result(None)

    def record(self, latency: float) -> None:
        """Adjust the window to one write's commit latency (seconds)."""
        now = time.monotonic()
        if latency > self._slow:
            if now - self._last_cut >= self._slow:
                self.size = max(1.0, self.size / 2)
                self._last_cut = now
        else:
            self.size = min(float(self._limit), self.size + 1.0 / self.size)
