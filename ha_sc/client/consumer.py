"""``TopicConsumer``: streams of a topic's records, from one partition or from all.

``consumer.stream(Offset.beginning())`` reads every partition (records of one
partition in order; partitions interleaved as their records arrive);
``partition=N`` reads only that one. ``stop_at_end=True`` ends each partition at the
end it had when the stream started. Use ``async with`` (or ``aclose``) to end a stream
early; ``async for record in stream`` gives records, ``stream.batches()`` lists of them
(less work per record).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Self

from ha_sc.client.closing import ClosedOnExit
from ha_sc.client.consumer_record import ConsumerRecord
from ha_sc.client.metadata import ClusterMetadata
from ha_sc.client.offsets import Offset
from ha_sc.client.partition_stream import PartitionStream
from ha_sc.client.stream_settings import ConsumerSettings
from ha_sc.tasks import Supervisor

QUEUE_DEPTH = 4
"""Lists of records a partition may have waiting for the reader of an all-partition stream."""

_Item = list[ConsumerRecord] | BaseException | None


class TopicConsumer:
    def __init__(
        self,
        topic: str,
        metadata: ClusterMetadata,
        settings: ConsumerSettings | None = None,
        *,
        timeout: float = 10.0,
    ) -> None:
        self.topic = topic
        self.settings = settings or ConsumerSettings()
        self._metadata = metadata
        self._timeout = timeout

    def stream(
        self, start: Offset, *, partition: int | None = None, stop_at_end: bool = False
    ) -> RecordStream:
        return RecordStream(self, start, partition, stop_at_end=stop_at_end)

    async def partition_streams(
        self, start: Offset, partition: int | None, *, stop_at_end: bool
    ) -> list[PartitionStream]:
        count = await self._metadata.wait_partition_count(self.topic, timeout=self._timeout)
        if partition is not None and not 0 <= partition < count:
            raise ValueError(f"topic {self.topic} has partitions 0..{count - 1}, not {partition}")
        chosen = range(count) if partition is None else [partition]
        return [
            PartitionStream(
                self.topic, index, start, self._metadata, self.settings, stop_at_end=stop_at_end
            )
            for index in chosen
        ]


class RecordStream(ClosedOnExit):
    """Async iterator of ``ConsumerRecord``; raises ConsumeFailed if a partition cannot
    be read."""

    def __init__(
        self, consumer: TopicConsumer, start: Offset, partition: int | None, *, stop_at_end: bool
    ) -> None:
        self._consumer = consumer
        self._start = start
        self._partition = partition
        self._stop_at_end = stop_at_end
        self._streams: list[PartitionStream] | None = None
        self._queue: asyncio.Queue[_Item] | None = None
        self._running = 0
        self._supervisor = Supervisor()
        self._current: list[ConsumerRecord] = []
        self._position = 0
        self._closed = False

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> ConsumerRecord:
        while self._position >= len(self._current):
            records = await self.next_batch()
            if records is None:
                raise StopAsyncIteration
            self._current, self._position = records, 0
        record = self._current[self._position]
        self._position += 1
        return record

    async def aclose(self) -> None:
        await self.close()

    async def batches(self) -> AsyncIterator[list[ConsumerRecord]]:
        """The records in the lists they arrived in."""
        if self._position < len(self._current):
            rest, self._current = self._current[self._position :], []
            yield rest
        while (records := await self.next_batch()) is not None:
            yield records

    async def next_batch(self) -> list[ConsumerRecord] | None:
        """The next records to arrive; None once every partition is at its end."""
        if self._closed:
            return None
        if self._streams is None:
            self._streams = await self._consumer.partition_streams(
                self._start, self._partition, stop_at_end=self._stop_at_end
            )
            if len(self._streams) > 1:
                self._start_readers(self._streams)
        if len(self._streams) == 1:
            return await self._streams[0].next_records()
        assert self._queue is not None
        while self._running:
            item = await self._queue.get()
            if item is None:
                self._running -= 1
            elif isinstance(item, BaseException):
                raise item
            else:
                return item
        return None

    async def close(self) -> None:
        """End the stream: stop its readers and close its connections."""
        self._closed = True
        await self._supervisor.stop()
        for stream in self._streams or []:
            await stream.aclose()

    @property
    def positions(self) -> dict[int, int]:
        """The next offset each partition will hand out (those resolved so far)."""
        return {
            s.partition: s.next_offset for s in self._streams or [] if s.next_offset is not None
        }

    def _start_readers(self, streams: list[PartitionStream]) -> None:
        queue: asyncio.Queue[_Item] = asyncio.Queue(QUEUE_DEPTH * len(streams))
        self._queue = queue
        self._running = len(streams)
        for stream in streams:
            self._supervisor.start(f"consume-{stream.name}", _read(stream, queue), critical=False)


async def _read(stream: PartitionStream, queue: asyncio.Queue[_Item]) -> None:
    """Move one partition's records to the shared queue; its end or failure too."""
    try:
        while (records := await stream.next_records()) is not None:
            await queue.put(records)
    except Exception as exc:
        await queue.put(exc)
        return
    await queue.put(None)
