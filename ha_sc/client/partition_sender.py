"""``PartitionSender``: the task that delivers one partition's batches, one at a time.

One batch is in flight per partition: the next is sent only once the previous one
is acknowledged or has failed for good, so records land in the order they were
given even across retries and leader changes (while one batch is in flight the
next ones fill up, so batches grow with the round trip). A batch is retried, the
same bytes each time, on "not leader" (to the leader the SPU names, or after asking
the SC), on a lost connection or a late answer, and on a timeout or storage error,
with a doubling pause, until the delivery timeout; then its acks raise. A batch the
leader refuses as out of sequence (it lacks earlier records of the producer: a leader
change lost them) is moved to a fresh producer id from sequence 0 and sent again at
once; the batches after it follow under that id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from ha_sc.client.accumulator import PartitionBuffer
from ha_sc.client.data_errors import (
    ChannelClosed,
    DeliveryTimeout,
    ProduceFailed,
    describe_data_error,
)
from ha_sc.client.idempotence import PartitionSequence
from ha_sc.client.metadata import ClusterMetadata
from ha_sc.client.producer_batch import ProducerBatch
from ha_sc.client.retry_policy import CONNECTION_LOST, Decision, Next, after_error, backoff
from ha_sc.client.spu_channel import SpuChannel
from ha_sc.client.stream_settings import ProducerSettings
from ha_sc.protocol.data import ErrorCode, ProduceRequest, ProduceResponse

log = logging.getLogger(__name__)


class PartitionSender:
    def __init__(
        self,
        topic: str,
        buffer: PartitionBuffer,
        sequence: PartitionSequence,
        metadata: ClusterMetadata,
        settings: ProducerSettings,
    ) -> None:
        self.topic = topic
        self.partition = buffer.partition
        self.buffer = buffer
        self.sequence = sequence
        self._metadata = metadata
        self._settings = settings
        self._wakeup = asyncio.Event()
        self.idle = False
        """Waiting for records (or for the open batch to be due): ``wake`` it."""
        self._channel: SpuChannel | None = None
        self.in_flight: ProducerBatch | None = None

    @property
    def name(self) -> str:
        return f"{self.topic}-{self.partition}"

    def wake(self) -> None:
        """Records were added, or a flush asked for: look at the buffer again."""
        self.idle = False
        self._wakeup.set()

    async def run(self) -> None:
        try:
            while True:
                batch = self.buffer.take(now=time.monotonic(), linger=self._settings.linger)
                if batch is None:
                    await self._sleep_until(self.buffer.due_at(self._settings.linger))
                    continue
                self.in_flight = batch
                try:
                    await self._deliver(batch)
                finally:
                    self.in_flight = None
        finally:
            await self.close_channel()

    async def close_channel(self) -> None:
        if self._channel is not None:
            channel, self._channel = self._channel, None
            await channel.aclose()

    async def _sleep_until(self, due: float | None) -> None:
        self._wakeup.clear()
        timeout = None if due is None else max(due - time.monotonic(), 0.0)
        self.idle = True
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wakeup.wait()
        finally:
            self.idle = False

    async def _deliver(self, batch: ProducerBatch) -> None:
        settings = self._settings
        if batch.wire is None:
            batch.encode(*self.sequence.take(batch.record_count))
        deadline = batch.opened_at + settings.delivery_timeout
        while True:
            batch.attempts += 1
            code: ErrorCode | None = None
            try:
                response = await self._attempt(batch)
            except ChannelClosed as exc:
                decision, reason = CONNECTION_LOST, str(exc)
            else:
                error = response.error
                if error is None and (response.base_offset is not None or response.duplicate):
                    # a duplicate older than the leader remembers has no offset: -1
                    offset = -1 if response.base_offset is None else response.base_offset
                    self._delivered(batch, offset, duplicate=response.duplicate)
                    return
                if error is None:
                    decision, reason = _NO_OFFSET, "the spu acknowledged without an offset"
                else:
                    decision, reason, code = (
                        after_error(error),
                        describe_data_error(error),
                        error.code,
                    )
                    if code is ErrorCode.NOT_LEADER and error.leader is not None:
                        self._metadata.leader_moved(
                            self.topic, self.partition, error.leader, error.leader_address
                        )
            if decision.refresh:
                self._metadata.request_refresh()
            if decision.next is Next.FAIL:
                self._fail(
                    batch,
                    ProduceFailed(
                        self._failure(batch, reason), partition=self.partition, code=code
                    ),
                )
                return
            if decision.next is Next.NEW_PRODUCER:
                self._new_producer(batch)
            pause = (
                backoff(
                    batch.attempts,
                    initial=settings.retry_backoff,
                    maximum=settings.retry_backoff_max,
                )
                if decision.pause
                else 0.0
            )
            if time.monotonic() + pause >= deadline:
                reason = f"not acknowledged within {settings.delivery_timeout:g} s; last: {reason}"
                self._fail(
                    batch,
                    DeliveryTimeout(
                        self._failure(batch, reason), partition=self.partition, code=code
                    ),
                )
                return
            log.debug(
                "partition %s: attempt %d failed (%s); retrying in %.3f s",
                self.name,
                batch.attempts,
                reason,
                pause,
            )
            await asyncio.sleep(pause)

    def _delivered(self, batch: ProducerBatch, base_offset: int, *, duplicate: bool) -> None:
        if batch.attempts > 1:
            log.info(
                "partition %s: batch of %d records delivered at offset %d after %d attempts%s",
                self.name,
                batch.record_count,
                base_offset,
                batch.attempts,
                " (the leader already had it)" if duplicate else "",
            )
        if not batch.done.done():
            batch.done.set_result(base_offset)

    async def _attempt(self, batch: ProducerBatch) -> ProduceResponse:
        settings = self._settings
        route = self._metadata.route(self.topic, self.partition)
        if route is None or route.address is None:
            raise ChannelClosed(
                f"leader of partition {self.name} not known"
                + (f" (spu {route.leader} has no known address)" if route else "")
            )
        channel = self._channel
        if channel is None or channel.closed or channel.address != route.address:
            await self.close_channel()
            channel = self._channel = await SpuChannel.connect(
                route.address, timeout=settings.connect_timeout, tls=self._metadata.tls
            )
        request = ProduceRequest(
            id=channel.next_id(),
            topic=self.topic,
            partition=self.partition,
            acks=settings.acks,
            timeout_ms=int(settings.ack_timeout * 1000),
        )
        assert batch.wire is not None
        response, _ = await channel.exchange(
            request, batch.wire, timeout=settings.ack_timeout + settings.request_timeout
        )
        if not isinstance(response, ProduceResponse):
            channel.close(f"spu {channel.address} answered a produce with {response.type}")
            raise ChannelClosed(f"spu {channel.address} answered a produce with {response.type}")
        return response

    def _new_producer(self, batch: ProducerBatch) -> None:
        """The leader refused ``batch`` as out of sequence: the records this producer sent
        before it are not all in the leader's log (acknowledged by a leader that was then
        replaced, with acks=leader). Nothing of the batch was written; it goes again, and
        the batches after it follow, under a fresh producer id from sequence 0."""
        lost_before, old_id = batch.base_sequence, batch.producer_id
        self.sequence.restart()
        batch.resequence(*self.sequence.take(batch.record_count))
        log.warning(
            "partition %s: leader lost records before sequence %d of producer %d; "
            "continuing as producer %d",
            self.name,
            lost_before,
            old_id,
            batch.producer_id,
        )

    def _failure(self, batch: ProducerBatch, reason: str) -> str:
        return (
            f"batch of {batch.record_count} records to partition {self.name} "
            f"failed after {batch.attempts} attempts: {reason}"
        )

    def _fail(self, batch: ProducerBatch, error: ProduceFailed) -> None:
        # its fate is unknown: later batches go under a fresh producer id
        self.sequence.restart()
        if not batch.done.done():
            batch.done.set_exception(error)


_NO_OFFSET = Decision(Next.RETRY, pause=True, refresh=False)
