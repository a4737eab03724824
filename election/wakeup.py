"""Wake asyncio waiters from any thread (pysyncobj calls back on its own).

A notify from another thread schedules one wake-up per waiter on the waiter's loop,
unless one is already scheduled and has not run yet: a Raft node applying thousands
of commands a second then costs each waiting loop one wake-up per turn, not one per
command (each is a write to the loop's self-pipe and a turn of the loop).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress


class _Waiter:
    __slots__ = ("event", "loop", "scheduled")

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.event = asyncio.Event()
        self.scheduled = False
        """A wake-up is on its way to ``loop`` (set and read under the Wakeup's lock)."""


class Wakeup:
    """Wakes every subscribed asyncio waiter; ``notify`` may be called from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: set[_Waiter] = set()

    @contextmanager
    def subscribe(self) -> Iterator[asyncio.Event]:
        waiter = _Waiter()
        with self._lock:
            self._waiters.add(waiter)
        try:
            yield waiter.event
        finally:
            with self._lock:
                self._waiters.discard(waiter)

    def notify(self) -> None:
        try:
            current: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        with self._lock:
            waiters = list(self._waiters)
            remote = [w for w in waiters if w.loop is not current and not w.scheduled]
            for waiter in remote:
                waiter.scheduled = True
        for waiter in waiters:
            if waiter.loop is current:
                waiter.event.set()
        for waiter in remote:
            with suppress(RuntimeError):  # that loop is closing
                waiter.loop.call_soon_threadsafe(self._wake, waiter)

    def _wake(self, waiter: _Waiter) -> None:
        """On the waiter's loop: the change is visible by now; later ones schedule anew."""
        with self._lock:
            waiter.scheduled = False
        waiter.event.set()
