"""Watches fed from a state machine's history: wake-ups across threads and the watch loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager, suppress

from ha_sc.kv.api import WatchEvent

ReadSince = Callable[[str, int], tuple[list[WatchEvent], int]]
"""(kind, start revision) -> (events of kind since then, store revision they were read at)."""


class ChangeSignal:
    """Wakes async watchers when changes are applied; ``notify`` works from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    @contextmanager
    def subscribe(self) -> Iterator[asyncio.Event]:
        waiter = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._waiters.add(waiter)
        try:
            yield waiter[1]
        finally:
            with self._lock:
                self._waiters.discard(waiter)

    def notify(self) -> None:
        with self._lock:
            waiters = list(self._waiters)
        try:
            current: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        for loop, event in waiters:
            if loop is current:
                event.set()
            else:
                with suppress(RuntimeError):  # that loop is closing
                    loop.call_soon_threadsafe(event.set)


async def watch_history(
    read_since: ReadSince, signal: ChangeSignal, kind: str, start_revision: int
) -> AsyncIterator[WatchEvent]:
    """Yield every change of ``kind`` from ``start_revision`` on, waiting for new ones."""
    next_revision = max(start_revision, 1)
    with signal.subscribe() as changed:
        while True:
            changed.clear()
            events, revision = read_since(kind, next_revision)
            for event in events:
                yield event
            next_revision = max(next_revision, revision + 1)
            await changed.wait()
