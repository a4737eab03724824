"""Waiting on a replica's offsets: long-polling fetches and acks=all produces."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable

from ha_sc.protocol.data import DataError


class ChangeSignal:
    """Wakes everyone waiting when a replica's LEO, HW, role or in-sync set changes
    (and calls ``on_fire``, if given, and each listener, each time). A listener is how
    a fetch session learns which of its many partitions changed without waiting on each
    (``leader_session.py``)."""

    def __init__(self, on_fire: Callable[[], None] | None = None) -> None:
        self._future: asyncio.Future[None] | None = None
        self._on_fire = on_fire
        self._listeners: set[Callable[[], None]] = set()

    def listen(self, listener: Callable[[], None]) -> None:
        self._listeners.add(listener)

    def unlisten(self, listener: Callable[[], None]) -> None:
        self._listeners.discard(listener)

    def fire(self) -> None:
        if self._on_fire is not None:
            self._on_fire()
        if self._listeners:
            for listener in tuple(self._listeners):
                listener()
        future, self._future = self._future, None
        if future is not None and not future.done():
            future.set_result(None)

    async def wait(self, timeout: float) -> None:
        """Until the next change, or ``timeout`` seconds."""
        if timeout <= 0:
            return
        if self._future is None:
            self._future = asyncio.get_running_loop().create_future()
        await asyncio.wait({self._future}, timeout=timeout)


class CommitWaiters:
    """acks=all produces waiting for the high watermark to pass their last offset.

    Each waiter's future ends with None once the HW reaches its offset, or with a
    DataError (the timeout, or this replica stepping down)."""

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, asyncio.Future[DataError | None]]] = []
        self._order = itertools.count()
        self._compact_at = 1024

    def __len__(self) -> int:
        return len(self._heap)

    def wait(
        self, offset: int, hw: int, timeout: float, on_timeout: DataError
    ) -> asyncio.Future[DataError | None]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[DataError | None] = loop.create_future()
        if hw >= offset:
            future.set_result(None)
            return future
        if len(self._heap) >= self._compact_at:  # drop the timed-out ones buried in it
            self._heap = [entry for entry in self._heap if not entry[2].done()]
            heapq.heapify(self._heap)
            self._compact_at = max(1024, 2 * len(self._heap))
        heapq.heappush(self._heap, (offset, next(self._order), future))
        timer = loop.call_later(timeout, _settle, future, on_timeout)
        future.add_done_callback(lambda _: timer.cancel())
        return future

    def release(self, hw: int) -> None:
        """The HW reached ``hw``: every waiter at or below it is committed."""
        heap = self._heap
        while heap and heap[0][0] <= hw:
            _, _, future = heapq.heappop(heap)
            _settle(future, None)
        while heap and heap[0][2].done():  # timed out: drop them as they surface
            heapq.heappop(heap)

    def fail_all(self, error: DataError) -> None:
        heap, self._heap = self._heap, []
        for _, _, future in heap:
            _settle(future, error)


def _settle(future: asyncio.Future[DataError | None], result: DataError | None) -> None:
    if not future.done():
        future.set_result(result)
