"""The streaming workload: producers writing unique records at a steady rate with the
client library, a live consumer reading them, and the drain's final read.

Two producers, one with acks=all and one with acks=leader, each send ``rate`` records
a second, record ``seq`` to partition ``seq % partitions``, the value
``<producer>:<seq>`` (unique in the run). Every record's outcome is one ``produce``
event (start, end, outcome, offset); every record read one ``read`` event. A produce
that failed in any way counts as ``unknown`` (the client retried: an earlier attempt
may have been written), never as a sure ``fail``. With ``load`` (records a second),
the bulk load (``bulk.py``) runs beside them on its own topic.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from chaos.cluster.topology import ChaosCluster
from chaos.history.events import Produce, Read
from chaos.history.history import FINAL_READER
from chaos.history.recorder import Recorder
from chaos.workload.bulk import BulkLoad
from chaos.workload.producers import START_TIMEOUT, producer_when_known
from ha_sc.client import (
    Acks,
    AdminClient,
    ApiError,
    ConsumeFailed,
    ConsumerRecord,
    ConsumerSettings,
    DeliveryTimeout,
    Offset,
    PartitionResolution,
    ProduceFailed,
    ProducerSettings,
    RecordAck,
    StreamClient,
    StreamError,
    TopicProducer,
    TopicReplicas,
    TopicSpec,
)
from ha_sc.tasks import Supervisor

log = logging.getLogger("chaos.workload")

TOPIC = "chaos"
PRODUCERS = {"p-all": Acks.ALL, "p-leader": Acks.LEADER}
DELIVERY_TIMEOUT = 15.0
"""Seconds a producer retries a record before giving up (its outcome: unknown)."""
SETTLE_TIMEOUT = DELIVERY_TIMEOUT + 10.0
"""Seconds ``stop`` waits for the outcome of everything sent."""
FINAL_READ_TIMEOUT = 30.0
SETTLE_HW_TIMEOUT = 10.0
"""Seconds the drain waits for every partition's high watermark to reach its end."""


class StreamingWorkload:
    def __init__(
        self,
        cluster: ChaosCluster,
        recorder: Recorder,
        *,
        rate: float = 50.0,
        partitions: int = 2,
        replication: int = 2,
        load: float = 0.0,
    ) -> None:
        self._cluster = cluster
        self._recorder = recorder
        self._interval = 1.0 / rate
        self._partitions = partitions
        self._replication = replication
        self._client = StreamClient(list(cluster.public.values()), sc_timeout=2.0)
        self._tasks = Supervisor()
        self._producers: dict[str, TopicProducer] = {}
        self._outcomes: set[asyncio.Task[None]] = set()
        self.consumer_errors = 0
        self._bulk = BulkLoad(cluster, recorder, load) if load > 0 else None

    async def start(self) -> None:
        spec = TopicSpec(replicas=TopicReplicas.new_computed(self._partitions, self._replication))
        async with self._cluster.admin(timeout=10.0) as admin:
            await admin.create_topic(TOPIC, spec, wait=20.0)
        await self._online_everywhere()
        await self._client.start()
        for name, acks in PRODUCERS.items():
            settings = ProducerSettings(acks=acks, delivery_timeout=DELIVERY_TIMEOUT, linger=0.002)
            producer = await self._producer(settings)
            self._producers[name] = producer
            self._tasks.start(f"chaos-produce-{name}", self._produce(name, acks, producer))
        self._tasks.start("chaos-consume-live", self._consume_live(), critical=False)
        if self._bulk is not None:
            await self._bulk.start()

    async def _online_everywhere(self) -> None:
        """Until every SC replica lists the topic's partitions, each Online (bounded):
        whichever replica the client asks then knows them."""
        deadline = time.monotonic() + START_TIMEOUT
        for address in self._cluster.public.values():
            async with AdminClient([address], timeout=2.0) as admin:
                while (seen := await self._online(admin)) is not None:
                    if time.monotonic() > deadline:
                        raise TimeoutError(
                            f"{TOPIC} not Online on {address} in {START_TIMEOUT:g} s: {seen}"
                        )
                    await asyncio.sleep(0.1)

    async def _online(self, admin: AdminClient) -> str | None:
        """None when every partition is listed Online; else what the replica answered."""
        try:
            partitions = await admin.list_partitions(TOPIC)
        except (ApiError, OSError, TimeoutError) as error:
            return f"{type(error).__name__}: {error}"
        if len(partitions) == self._partitions and all(
            p.status.resolution is PartitionResolution.ONLINE for p in partitions
        ):
            return None
        return ", ".join(f"{p.key} {p.status.resolution}" for p in partitions) or "no partitions"

    async def _producer(self, settings: ProducerSettings) -> TopicProducer:
        return await producer_when_known(self._client, TOPIC, settings)

    async def stop(self) -> None:
        if self._bulk is not None:
            await self._bulk.stop()
        for name in self._producers:
            task = self._tasks.tasks.get(f"chaos-produce-{name}")
            if task is not None:
                task.cancel()
                await asyncio.wait({task}, timeout=5.0)
        if self._outcomes:
            await asyncio.wait(set(self._outcomes), timeout=SETTLE_TIMEOUT)
        for producer in self._producers.values():
            with contextlib.suppress(StreamError, TimeoutError):
                async with asyncio.timeout(5.0):
                    await producer.close()

    async def drain(self) -> None:
        live = self._tasks.tasks.get("chaos-consume-live")
        if live is not None:
            live.cancel()
            await asyncio.wait({live}, timeout=5.0)
        await self._settled()
        settings = ConsumerSettings(wait=0.2, unavailable_timeout=FINAL_READ_TIMEOUT)
        stream = self._client.consumer(TOPIC, settings).stream(Offset.beginning(), stop_at_end=True)
        async with asyncio.timeout(FINAL_READ_TIMEOUT), stream:
            async for batch in stream.batches():
                self._record_reads(FINAL_READER, batch)
        if self._bulk is not None:
            await self._bulk.drain()

    async def close(self) -> None:
        if self._bulk is not None:
            await self._bulk.close()
        for task in list(self._outcomes):
            task.cancel()
        await self._tasks.stop()
        for producer in self._producers.values():
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2.0):
                    await producer.close()
        await self._client.close()

    # producing

    async def _produce(self, name: str, acks: Acks, producer: TopicProducer) -> None:
        seq = 0
        due = time.monotonic()
        while True:  # until stop() cancels it
            partition = seq % self._partitions
            start = time.time()
            ack = await producer.send(f"{name}:{seq}".encode(), partition=partition)
            task = asyncio.create_task(
                self._outcome(name, seq, partition, acks, start, ack), name=f"ack-{name}-{seq}"
            )
            self._outcomes.add(task)
            task.add_done_callback(self._outcomes.discard)
            seq += 1
            due += self._interval
            await asyncio.sleep(max(0.0, due - time.monotonic()))

    async def _outcome(
        self, name: str, seq: int, partition: int, acks: Acks, start: float, ack: RecordAck
    ) -> None:
        offset: int | None = None
        error: str | None = None
        try:
            offset = await ack
        except DeliveryTimeout as exc:
            error = f"delivery_timeout: {exc}"
        except ProduceFailed as exc:
            code = exc.code.value if exc.code is not None else "connection"
            error = f"{code}: {exc}"
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
        self._recorder.record(
            Produce(
                producer=name,
                seq=seq,
                topic=TOPIC,
                partition=partition,
                acks=acks.value,
                start=start,
                end=time.time(),
                outcome="ok" if error is None else "unknown",
                offset=offset if offset is not None and offset >= 0 else None,
                error=error,
            )
        )

    # reading

    async def _consume_live(self) -> None:
        while True:
            stream = self._client.consumer(TOPIC).stream(Offset.beginning())
            try:
                async with stream:
                    async for batch in stream.batches():
                        self._record_reads("live", batch)
            except ConsumeFailed as exc:
                self.consumer_errors += 1
                log.warning("live consumer: %s; reading again from the start", exc)
                await asyncio.sleep(0.5)

    def _record_reads(self, reader: str, batch: list[ConsumerRecord]) -> None:
        now = time.time()
        for record in batch:
            producer, _, seq = record.value.decode(errors="replace").rpartition(":")
            if not producer or not seq.isdigit():
                continue
            self._recorder.record(
                Read(
                    reader=reader,
                    t=now,
                    topic=TOPIC,
                    partition=record.partition,
                    offset=record.offset,
                    producer=producer,
                    seq=int(seq),
                )
            )

    async def _settled(self) -> None:
        """Until every partition's leader reports its high watermark at its log end
        (bounded): the final read then sees everything the replicas will keep."""
        deadline = time.monotonic() + SETTLE_HW_TIMEOUT
        async with self._cluster.admin(timeout=2.0) as admin:
            while time.monotonic() < deadline:
                with contextlib.suppress(Exception):
                    partitions = await admin.list_partitions(TOPIC)
                    if partitions and all(
                        p.status.leader.hw == p.status.leader.leo >= 0 for p in partitions
                    ):
                        return
                await asyncio.sleep(0.2)
        log.warning("high watermarks not at the log ends after %.0f s", SETTLE_HW_TIMEOUT)
