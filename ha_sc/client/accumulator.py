"""``PartitionBuffer``: the records waiting to be sent to one partition, cut into batches.

No I/O; the clock it reads when a batch opens or closes is given to it. Records join
the open batch
until it would exceed the batch's byte or record limit; then it is sealed and queued,
and a new one opens. The sender takes sealed batches first, then the open one once it
has lingered long enough (or at once when flushing).
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ha_sc.client.producer_batch import Clock, ProducerBatch
from ha_sc.client.record_codec import RECORD_OVERHEAD


@dataclass(frozen=True, slots=True)
class BatchPart:
    """Records of one ``append_many`` that went into one batch."""

    batch: ProducerBatch
    first: int
    """The index of the first of them in the batch (0: the batch is new)."""
    count: int
    size: int
    """Payload bytes they add."""


class PartitionBuffer:
    def __init__(
        self,
        partition: int,
        *,
        batch_bytes: int,
        batch_records: int,
        new_future: Callable[[], asyncio.Future[int]],
        clock: Clock,
    ) -> None:
        self.partition = partition
        self._clock = clock
        self._batch_bytes = batch_bytes
        self._batch_records = batch_records
        self._new_future = new_future
        self._open: ProducerBatch | None = None
        self._sealed: deque[ProducerBatch] = deque()
        self.flushing = False
        """Send the open batch without lingering."""

    @property
    def has_batches(self) -> bool:
        return self._open is not None or bool(self._sealed)

    def append(self, value: bytes, key: bytes | None) -> tuple[ProducerBatch, int, int]:
        """Add one record; returns its batch, its index in the batch and its size."""
        size = len(value) + RECORD_OVERHEAD if key is None else len(value) + len(key) + 8
        batch = self._open
        if (
            batch is None
            or batch.size + size > self._batch_bytes
            or (len(batch.values) >= self._batch_records)
        ):
            self.seal_open()
            batch = self._open = self._new_batch()
        values = batch.values
        index = len(values)
        values.append(value)
        if batch.keys is not None:
            batch.keys.append(key)
        elif key is not None:
            batch.keys = [None] * index
            batch.keys.append(key)
        batch.size += size
        return batch, index, size

    def append_many(self, values: Sequence[bytes], key: bytes | None) -> list[BatchPart]:
        """Add records in order: first into the open batch as far as it has room, then
        in as few new batches as the limits allow. The last stays open for more."""
        extra = RECORD_OVERHEAD + (0 if key is None else len(key))
        ends = list(itertools.accumulate(map(extra.__add__, map(len, values))))
        parts: list[BatchPart] = []
        start = used = 0
        batch = self._open
        if batch is not None:
            room = self._batch_bytes - batch.size
            stop = min(bisect.bisect_right(ends, room), self._batch_records - len(batch.values))
            if stop > 0:
                first = len(batch.values)
                batch.values += values[:stop]
                if key is not None and batch.keys is None:
                    batch.keys = [None] * first
                if batch.keys is not None:
                    batch.keys += [key] * stop
                batch.size += ends[stop - 1]
                parts.append(BatchPart(batch, first, stop, ends[stop - 1]))
                start = stop
                used = ends[stop - 1]
        while start < len(values):
            # the last record that still fits, but at least one record per batch
            stop = bisect.bisect_right(ends, used + self._batch_bytes, lo=start)
            stop = min(max(stop, start + 1), start + self._batch_records)
            self.seal_open()
            batch = self._open = self._new_batch()
            batch.values = list(values[start:stop])
            if key is not None:
                batch.keys = [key] * (stop - start)
            batch.size = ends[stop - 1] - used
            parts.append(BatchPart(batch, 0, stop - start, batch.size))
            used = ends[stop - 1]
            start = stop
        return parts

    def seal_open(self) -> None:
        """Close the open batch (if any) and queue it."""
        if self._open is not None:
            self._open.seal(self._clock()[1])
            self._sealed.append(self._open)
            self._open = None

    def take(self, *, now: float, linger: float) -> ProducerBatch | None:
        """The next batch to send, if one is due."""
        if self._sealed:
            return self._sealed.popleft()
        batch = self._open
        if batch is not None and (self.flushing or now - batch.opened_at >= linger):
            self.seal_open()
            return self._sealed.popleft()
        return None

    def take_more(self, max_bytes: int, max_batches: int) -> list[ProducerBatch]:
        """Sealed batches queued after the one taken, oldest first, at most
        ``max_batches`` and ``max_bytes`` of payload in all (to travel in the same
        request)."""
        batches: list[ProducerBatch] = []
        sealed = self._sealed
        while sealed and sealed[0].size <= max_bytes and len(batches) < max_batches:
            max_bytes -= sealed[0].size
            batches.append(sealed.popleft())
        return batches

    def due_at(self, linger: float) -> float | None:
        """When the open batch will be due (None: no open batch)."""
        return None if self._open is None else self._open.opened_at + linger

    def drain(self) -> list[ProducerBatch]:
        """Every batch not yet taken, removed (to fail them)."""
        batches = list(self._sealed)
        if self._open is not None:
            batches.append(self._open)
        self._sealed.clear()
        self._open = None
        return batches

    def _new_batch(self) -> ProducerBatch:
        now, now_ms = self._clock()
        return ProducerBatch(
            partition=self.partition,
            opened_at=now,
            first_timestamp_ms=now_ms,
            done=self._new_future(),
        )
