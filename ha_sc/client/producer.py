"""``TopicProducer``: send records to a topic's partitions, batched, retried, deduplicated.

``await producer.send(value, key=...)`` queues one record and returns its ``RecordAck``
(``await`` that for the offset); ``await producer.send_many(values)`` queues many at a
time for the least work per record. Records without a key or partition go round
robin (one record at a time for ``send``, in contiguous runs for ``send_many``);
with a key, to the partition of its hash. Delivery is per partition, in order, by
one ``PartitionSender`` task each (see partition_sender.py and idempotence.py).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Sequence

from ha_sc.client.accumulator import PartitionBuffer
from ha_sc.client.closing import ClosedOnExit
from ha_sc.client.data_errors import ProduceFailed
from ha_sc.client.idempotence import PartitionSequence, new_producer_id
from ha_sc.client.metadata import ClusterMetadata
from ha_sc.client.partition_sender import PartitionSender
from ha_sc.client.partitioner import RoundRobin, partition_for_key
from ha_sc.client.producer_batch import BulkAck, ProducerBatch, RecordAck, batch_clock
from ha_sc.client.stream_settings import ProducerSettings
from ha_sc.tasks import Supervisor, TaskFailure

log = logging.getLogger(__name__)


class TopicProducer(ClosedOnExit):
    """Produces to one topic. Create with ``create`` (it learns the partition count)."""

    def __init__(
        self,
        topic: str,
        partitions: int,
        metadata: ClusterMetadata,
        settings: ProducerSettings | None = None,
    ) -> None:
        if partitions < 1:
            raise ValueError("a topic has at least one partition")
        self.topic = topic
        self.partitions = partitions
        self.settings = settings or ProducerSettings()
        self.producer_id = new_producer_id()
        self._metadata = metadata
        self._round_robin = RoundRobin()
        self._senders: dict[int, PartitionSender] = {}
        self._supervisor = Supervisor(on_fatal=self._sender_failed)
        self._pending: set[asyncio.Future[int]] = set()
        self._buffered = 0
        self._buffer_limit = self.settings.buffer_bytes
        self._full = False
        self._space = asyncio.Event()
        self._space.set()
        self._broken: TaskFailure | None = None
        self._closed = False

    @classmethod
    async def create(
        cls,
        topic: str,
        metadata: ClusterMetadata,
        settings: ProducerSettings | None = None,
        *,
        timeout: float = 10.0,
    ) -> TopicProducer:
        """A producer for ``topic``; raises UnknownTopic if no partition of it is known."""
        partitions = await metadata.wait_partition_count(topic, timeout=timeout)
        return cls(topic, partitions, metadata, settings)

    # sending

    async def send(
        self, value: bytes, *, key: bytes | None = None, partition: int | None = None
    ) -> RecordAck:
        """Queue one record; waits only while the buffer is full."""
        if self._closed or self._broken is not None or self._full:
            await self._wait_usable()
        if partition is None and key is None:
            chosen = self._round_robin.next(self.partitions)
        else:
            chosen = self._partition(key, partition)
        sender = self._senders.get(chosen) or self._sender(chosen)
        batch, index, size = sender.buffer.append(value, key)
        if index == 0:
            self._track(batch)
        self._buffered += size
        if self._buffered >= self._buffer_limit:
            self._full = True
        if sender.idle:
            sender.wake()
        return RecordAck(batch.done, index, chosen)

    async def send_many(
        self,
        values: Sequence[bytes],
        *,
        key: bytes | None = None,
        partition: int | None = None,
    ) -> BulkAck:
        """Queue many records at once, the fast path for bulk sends.

        With a key, all go to the key's partition; with ``partition``, there; with
        neither, they are cut into as many contiguous runs as there are partitions and
        each run goes to the next partition in turn. Order is kept within a partition."""
        if self._closed or self._broken is not None or self._full:
            await self._wait_usable()
        if key is not None or partition is not None or self.partitions == 1:
            runs = [(self._partition(key, partition), values)]
        else:
            size = -(-len(values) // self.partitions)
            runs = [
                (self._round_robin.next(self.partitions), values[start : start + size])
                for start in range(0, len(values), size)
            ]
        parts: list[tuple[ProducerBatch, int, int]] = []
        for chosen, run in runs:
            sender = self._sender(chosen)
            for part in sender.buffer.append_many(run, key):
                if part.first == 0:
                    self._track(part.batch)
                self._buffered += part.size
                parts.append((part.batch, part.first, part.count))
            sender.wake()
        if self._buffered >= self._buffer_limit:
            self._full = True
        return BulkAck(parts)

    async def flush(self) -> None:
        """Send every queued record now and wait until each is acknowledged or failed."""
        waiting = set(self._pending)
        if not waiting:
            return
        for sender in self._senders.values():
            sender.buffer.flushing = True
            sender.wake()
        try:
            await asyncio.wait(waiting)
        finally:
            for sender in self._senders.values():
                sender.buffer.flushing = False

    async def close(self) -> None:
        """Flush, then stop the senders and close their connections."""
        if self._closed:
            return
        try:
            if self._broken is None:
                await self.flush()
        finally:
            self._closed = True
            await self._supervisor.stop()
            self._fail_waiting(ProduceFailed(f"producer of {self.topic} closed"))

    # inside

    def _partition(self, key: bytes | None, partition: int | None) -> int:
        if partition is not None:
            if not 0 <= partition < self.partitions:
                raise ValueError(
                    f"topic {self.topic} has partitions 0..{self.partitions - 1}, not {partition}"
                )
            return partition
        if key is not None:
            return partition_for_key(key, self.partitions)
        return self._round_robin.next(self.partitions)

    def _sender(self, partition: int) -> PartitionSender:
        sender = self._senders.get(partition)
        if sender is None:
            loop = asyncio.get_running_loop()
            buffer = PartitionBuffer(
                partition,
                batch_bytes=self.settings.batch_bytes,
                batch_records=self.settings.batch_records,
                new_future=loop.create_future,
                clock=batch_clock,
            )
            sender = PartitionSender(
                self.topic, buffer, PartitionSequence(self.producer_id), self._metadata,
                self.settings,
            )  # fmt: skip
            self._senders[partition] = sender
            self._supervisor.start(f"produce-{self.topic}-{partition}", sender.run())
        return sender

    def _track(self, batch: ProducerBatch) -> None:
        self._pending.add(batch.done)
        batch.done.add_done_callback(functools.partial(self._batch_done, batch))

    def _batch_done(self, batch: ProducerBatch, future: asyncio.Future[int]) -> None:
        self._pending.discard(future)
        self._buffered -= batch.size
        if self._full and self._buffered < self._buffer_limit:
            self._full = False
            self._space.set()
        if not future.cancelled() and (error := future.exception()) is not None:
            log.warning("%s", error)

    async def _wait_usable(self) -> None:
        """Raise if the producer cannot send; else wait for room in the buffer."""
        while True:
            if self._closed:
                raise ProduceFailed(f"producer of {self.topic} is closed")
            if self._broken is not None:
                raise ProduceFailed(f"producer of {self.topic} stopped: {self._broken}")
            if not self._full:
                return
            self._space.clear()
            await self._space.wait()

    def _sender_failed(self, failure: TaskFailure) -> None:
        self._broken = failure
        log.error("producer of %s stopped: %s", self.topic, failure)
        self._fail_waiting(ProduceFailed(f"producer of {self.topic} stopped: {failure}"))

    def _fail_waiting(self, error: ProduceFailed) -> None:
        for sender in self._senders.values():
            for batch in sender.buffer.drain():
                if not batch.done.done():
                    batch.done.set_exception(error)
            for batch in sender.in_flight:
                if not batch.done.done():
                    batch.done.set_exception(error)
        self._full = False
        self._space.set()
