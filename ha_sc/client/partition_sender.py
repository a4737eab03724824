"""``PartitionSender``: the task that delivers one partition's batches, one request at
a time.

One produce request is in flight per partition: the next is sent only once the
previous one is acknowledged or has failed for good, so records land in the order
they were given even across retries and leader changes. While a request is in flight
the next batches fill up and queue; the next request carries every queued batch that
fits ``request_bytes`` (at least one), so what a round trip carries grows with the
round trip. The leader writes a request all or nothing, so its batches share one
fate. A request is retried, the same bytes each time, on "not leader" (to the leader
the SPU names, or after asking the SC), on a lost connection or a late answer, and on
a timeout or storage error, with a doubling pause, until the delivery timeout (from
its oldest record); then its acks raise. A request the leader refuses as out of
sequence (it lacks earlier records of the producer: a leader change lost them) has
its batches moved to a fresh producer id from sequence 0 and is sent again at once;
the batches after it follow under that id.
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

MAX_BATCHES_PER_REQUEST = 16
"""Batches one request carries at most: a leader remembers each producer's last 32
batches, so a request sent again after its answer was lost is still recognised batch by
batch (with the offsets it was written at)."""


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
        self.in_flight: list[ProducerBatch] = []
        """The batches of the request being delivered."""

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
                more = self.buffer.take_more(
                    self._settings.request_bytes - batch.size, MAX_BATCHES_PER_REQUEST - 1
                )
                batches = [batch, *more]
                self.in_flight = batches
                try:
                    await self._deliver(batches)
                finally:
                    self.in_flight = []
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

    async def _deliver(self, batches: list[ProducerBatch]) -> None:
        settings = self._settings
        for batch in batches:
            if batch.wire is None:
                batch.encode(*self.sequence.take(batch.record_count))
        body = _body(batches)
        first = batches[0]
        deadline = first.opened_at + settings.delivery_timeout
        attempts = 0
        while True:
            attempts += 1
            code: ErrorCode | None = None
            try:
                response = await self._attempt(body)
            except ChannelClosed as exc:
                decision, reason = CONNECTION_LOST, str(exc)
            else:
                error = response.error
                if error is None and (response.base_offset is not None or response.duplicate):
                    self._delivered(
                        batches, response.base_offset, attempts, duplicate=response.duplicate
                    )
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
                    batches,
                    ProduceFailed(
                        self._failure(batches, attempts, reason),
                        partition=self.partition,
                        code=code,
                    ),
                )
                return
            if decision.next is Next.NEW_PRODUCER:
                self._new_producer(batches)
                body = _body(batches)
            pause = (
                backoff(
                    attempts,
                    initial=settings.retry_backoff,
                    maximum=settings.retry_backoff_max,
                )
                if decision.pause
                else 0.0
            )
            if time.monotonic() + pause >= deadline:
                reason = f"not acknowledged within {settings.delivery_timeout:g} s; last: {reason}"
                self._fail(
                    batches,
                    DeliveryTimeout(
                        self._failure(batches, attempts, reason),
                        partition=self.partition,
                        code=code,
                    ),
                )
                return
            log.debug(
                "partition %s: attempt %d failed (%s); retrying in %.3f s",
                self.name,
                attempts,
                reason,
                pause,
            )
            await asyncio.sleep(pause)

    def _delivered(
        self,
        batches: list[ProducerBatch],
        base_offset: int | None,
        attempts: int,
        *,
        duplicate: bool,
    ) -> None:
        """The leader wrote the request's batches back to back from ``base_offset`` (or
        had them already: a duplicate older than it remembers has no offset, -1)."""
        if attempts > 1:
            log.info(
                "partition %s: %s delivered at offset %s after %d attempts%s",
                self.name,
                _records(batches),
                -1 if base_offset is None else base_offset,
                attempts,
                " (the leader already had it)" if duplicate else "",
            )
        offset = base_offset
        for batch in batches:
            if not batch.done.done():
                batch.done.set_result(-1 if offset is None else offset)
            if offset is not None:
                offset += batch.record_count

    async def _attempt(self, body: bytes) -> ProduceResponse:
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
        response, _ = await channel.exchange(
            request, body, timeout=settings.ack_timeout + settings.request_timeout
        )
        if not isinstance(response, ProduceResponse):
            channel.close(f"spu {channel.address} answered a produce with {response.type}")
            raise ChannelClosed(f"spu {channel.address} answered a produce with {response.type}")
        return response

    def _new_producer(self, batches: list[ProducerBatch]) -> None:
        """The leader refused the request as out of sequence: the records this producer
        sent before it are not all in the leader's log (acknowledged by a leader that was
        then replaced, with acks=leader). Nothing of the request was written; its batches
        go again, and the batches after them follow, under a fresh producer id from
        sequence 0."""
        lost_before, old_id = batches[0].base_sequence, batches[0].producer_id
        self.sequence.restart()
        for batch in batches:
            batch.resequence(*self.sequence.take(batch.record_count))
        log.warning(
            "partition %s: leader lost records before sequence %d of producer %d; "
            "continuing as producer %d",
            self.name,
            lost_before,
            old_id,
            batches[0].producer_id,
        )

    def _failure(self, batches: list[ProducerBatch], attempts: int, reason: str) -> str:
        return (
            f"{_records(batches)} to partition {self.name} "
            f"failed after {attempts} attempts: {reason}"
        )

    def _fail(self, batches: list[ProducerBatch], error: ProduceFailed) -> None:
        # their fate is unknown: later batches go under a fresh producer id
        self.sequence.restart()
        for batch in batches:
            if not batch.done.done():
                batch.done.set_exception(error)


def _body(batches: list[ProducerBatch]) -> bytes:
    """The request's body: the batches as encoded, back to back."""
    wires = [batch.wire for batch in batches if batch.wire is not None]
    assert len(wires) == len(batches), "encode the batches before sending"
    return wires[0] if len(wires) == 1 else b"".join(wires)


def _records(batches: list[ProducerBatch]) -> str:
    count = sum(batch.record_count for batch in batches)
    return (
        f"batch of {count} records"
        if len(batches) == 1
        else (f"{len(batches)} batches of {count} records")
    )


_NO_OFFSET = Decision(Next.RETRY, pause=True, refresh=False)
