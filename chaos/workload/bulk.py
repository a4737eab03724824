"""The bulk load: many records a second with acks=all through the client library's
batching producer, checked by the range rather than record by record.

One producer (``load``) sends ``send_many`` calls of ``CALL`` records to the topic
``chaos-load``, each call to the next partition in turn, at ``rate`` records a second
(as fast as it can when it cannot keep up; at most ``WINDOW`` calls unacknowledged).
Record ``seq`` has the value ``load:<seq>``. Each acknowledged part of a call (a run
of consecutive offsets in one partition) is one ``bulk`` event; a call that failed
is one ``bulk`` event of outcome unknown. The drain reads every partition from its
start and records runs of consecutive offsets holding consecutive seqs as ``span``
events. ``chaos.checkers.bulk`` checks the two against each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from chaos.cluster.topology import ChaosCluster
from chaos.history.events import Bulk, Span
from chaos.history.history import FINAL_READER
from chaos.history.recorder import Recorder
from chaos.workload.producers import producer_when_known
from ha_sc.client import (
    Acks,
    BulkAck,
    ConsumerRecord,
    ConsumerSettings,
    Offset,
    ProducerSettings,
    StreamClient,
    StreamError,
    TopicProducer,
    TopicReplicas,
    TopicSpec,
)
from ha_sc.tasks import Supervisor

log = logging.getLogger("chaos.workload.bulk")

TOPIC = "chaos-load"
PRODUCER = "load"
CALL = 1000
"""Records per ``send_many`` call."""
WINDOW = 32
"""Calls sent and not yet acknowledged, at most."""
PARTITIONS = 3
DELIVERY_TIMEOUT = 15.0
SETTLE_TIMEOUT = DELIVERY_TIMEOUT + 10.0
FINAL_READ_TIMEOUT = 1800.0
"""Seconds the drain may read the load topic back (a 30-minute soak at 100k records a
second leaves 180 M records; about 500k a second are read and checked here)."""
CREATE_WAIT = 20.0


class BulkLoad:
    def __init__(
        self, cluster: ChaosCluster, recorder: Recorder, rate: float, *, replication: int = 2
    ) -> None:
        self._cluster = cluster
        self._recorder = recorder
        self._rate = rate
        self._replication = replication
        self._client = StreamClient(list(cluster.public.values()), sc_timeout=2.0)
        self._tasks = Supervisor()
        self._producer: TopicProducer | None = None
        self._in_flight: set[asyncio.Task[None]] = set()
        self.started_at = 0.0
        self.stopped_at = 0.0

    async def start(self) -> None:
        spec = TopicSpec(replicas=TopicReplicas.new_computed(PARTITIONS, self._replication))
        async with self._cluster.admin(timeout=10.0) as admin:
            await admin.create_topic(TOPIC, spec, wait=CREATE_WAIT)
        await self._client.start()
        settings = ProducerSettings(
            acks=Acks.ALL, delivery_timeout=DELIVERY_TIMEOUT, batch_records=CALL
        )
        self._producer = await producer_when_known(self._client, TOPIC, settings)
        self._tasks.start("chaos-bulk-load", self._send(self._producer))
        self.started_at = time.time()

    async def stop(self) -> None:
        task = self._tasks.tasks.get("chaos-bulk-load")
        if task is not None:
            task.cancel()
            await asyncio.wait({task}, timeout=5.0)
        self.stopped_at = time.time()
        if self._in_flight:
            await asyncio.wait(set(self._in_flight), timeout=SETTLE_TIMEOUT)
        if self._producer is not None:
            with contextlib.suppress(StreamError, TimeoutError):
                async with asyncio.timeout(5.0):
                    await self._producer.close()

    async def drain(self) -> None:
        """Read every partition from its start; each run of consecutive records is one
        ``span`` event."""
        settings = ConsumerSettings(wait=0.2, unavailable_timeout=60.0)
        stream = self._client.consumer(TOPIC, settings).stream(Offset.beginning(), stop_at_end=True)
        async with asyncio.timeout(FINAL_READ_TIMEOUT), stream:
            async for batch in stream.batches():
                for span in spans_of(batch, time.time()):
                    self._recorder.record(span)

    async def close(self) -> None:
        for task in list(self._in_flight):
            task.cancel()
        await self._tasks.stop()
        if self._producer is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2.0):
                    await self._producer.close()
        await self._client.close()

    async def _send(self, producer: TopicProducer) -> None:
        seq = 0
        partition = 0
        due = time.monotonic()
        interval = CALL / self._rate
        while True:  # until stop() cancels it
            while len(self._in_flight) >= WINDOW:
                await asyncio.wait(set(self._in_flight), return_when=asyncio.FIRST_COMPLETED)
            values = [f"{PRODUCER}:{s}".encode() for s in range(seq, seq + CALL)]
            start = time.time()
            ack = await producer.send_many(values, partition=partition)
            task = asyncio.create_task(
                self._outcome(partition, seq, start, ack), name=f"bulk-ack-{seq}"
            )
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
            seq += CALL
            partition = (partition + 1) % PARTITIONS
            due += interval
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            due = max(due, time.monotonic() - interval)  # behind: do not burst to catch up

    async def _outcome(self, partition: int, first: int, start: float, ack: BulkAck) -> None:
        try:
            delivered = await ack
        except Exception as exc:
            self._recorder.record(
                Bulk(producer=PRODUCER, topic=TOPIC, partition=partition, first_seq=first,
                     count=CALL, acks="all", start=start, end=time.time(), outcome="unknown",
                     error=f"{type(exc).__name__}: {exc}")
            )  # fmt: skip
            return
        end = time.time()
        for part in delivered:
            self._recorder.record(
                Bulk(producer=PRODUCER, topic=TOPIC, partition=part.partition, first_seq=first,
                     count=part.record_count, acks="all", start=start, end=end, outcome="ok",
                     offset=part.base_offset)
            )  # fmt: skip
            first += part.record_count


@dataclass(slots=True)
class _Run:
    partition: int
    producer: str
    offset: int
    seq: int
    count: int = 1

    def extends(self, partition: int, producer: str, offset: int, seq: int) -> bool:
        return (partition, producer, offset, seq) == (
            self.partition, self.producer, self.offset + self.count, self.seq + self.count
        )  # fmt: skip


def spans_of(batch: list[ConsumerRecord], t: float) -> list[Span]:
    """Runs of consecutive offsets holding consecutive seqs of one producer."""
    runs: list[_Run] = []
    for record in batch:
        producer, _, seq_text = record.value.decode(errors="replace").rpartition(":")
        if not producer or not seq_text.isdigit():
            continue
        seq = int(seq_text)
        if runs and runs[-1].extends(record.partition, producer, record.offset, seq):
            runs[-1].count += 1
        else:
            runs.append(_Run(record.partition, producer, record.offset, seq))
    return [
        Span(reader=FINAL_READER, t=t, topic=TOPIC, partition=r.partition, offset=r.offset,
             producer=r.producer, seq=r.seq, count=r.count)
        for r in runs
    ]  # fmt: skip
