"""``PartitionSender``: the task that delivers one partition's batches, in order,
with up to ``max_in_flight`` requests on the wire.

Requests go one after another on one connection to the partition's leader, the next
sent before the previous is answered (pipelining, as the SPU answers a connection's
requests in order and writes them in arrival order), so the client encodes and sends,
the leader writes and the followers replicate at the same time instead of in turn.
Each request carries the queued batches that fit ``request_bytes`` (at least one);
with every request answered it waits for records (or for the open batch to be due).
The leader writes a request all or nothing, so its batches share one fate.

The first request of the window that fails (an error answer, a lost connection or a
late answer) stops the pipeline: the connection is closed, the answers of the requests
after it are not read, and from it on every request of the window is delivered again,
one at a time, in order, the same bytes each time, as a single request in flight
always was: retried on "not leader" (to the leader the SPU names, or after asking the
SC), on a lost connection or a late answer, and on a timeout or storage error, with a
doubling pause, until the delivery timeout (from its oldest record); then its acks
raise. A request written before the pipeline stopped is answered as a duplicate, with
the offsets it was written at: the batches on the wire are never more than the leader
remembers per producer (``MAX_BATCHES_IN_FLIGHT``). A request the leader refuses as
out of sequence (it lacks earlier records of the producer: a leader change lost them,
or an earlier request failed for good without being written) has its batches moved to
a fresh producer id from sequence 0 and is sent again at once; the batches after it
follow under that id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

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
"""Batches one request carries at most."""
MAX_BATCHES_IN_FLIGHT = 32
"""Batches on the wire at most, over every request in flight: a leader remembers each
producer's last 32 batches, so requests sent again after the pipeline stopped are still
recognised batch by batch (with the offsets they were written at)."""


@dataclass(slots=True)
class _Request:
    """Batches sent together: their encoded body, sent the same each time."""

    batches: list[ProducerBatch]
    body: bytes


Outcome = ProduceResponse | ChannelClosed
"""A request's answer, or why none came."""


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
        self._window: deque[_Request] = deque()
        """Requests sent and not answered yet (or being delivered again), oldest first."""
        self._on_wire = 0
        """Batches of the requests in ``_window``."""
        self._answer: asyncio.Task[ProduceResponse] | None = None
        """Reading the answer to the oldest request of the window."""

    @property
    def name(self) -> str:
        return f"{self.topic}-{self.partition}"

    @property
    def in_flight(self) -> list[ProducerBatch]:
        """The batches sent and not yet acknowledged (nor failed), oldest first."""
        return [batch for request in self._window for batch in request.batches]

    def wake(self) -> None:
        """Records were added, or a flush asked for: look at the buffer again."""
        self.idle = False
        self._wakeup.set()

    async def run(self) -> None:
        linger = self._settings.linger
        try:
            while True:
                room = self._room()
                if room:
                    batch = self.buffer.take(now=time.monotonic(), linger=linger)
                    if batch is not None:
                        await self._send(batch, room)
                        continue
                if self._window:
                    await self._await_answer(wake=room > 0)
                else:
                    await self._sleep_until(self.buffer.due_at(linger))
        finally:
            await self._stop_reading()
            await self.close_channel()

    async def close_channel(self) -> None:
        if self._channel is not None:
            channel, self._channel = self._channel, None
            await channel.aclose()

    def _room(self) -> int:
        """Batches the next request may carry (0: the window is full)."""
        if len(self._window) >= self._settings.max_in_flight:
            return 0
        return min(MAX_BATCHES_PER_REQUEST, MAX_BATCHES_IN_FLIGHT - self._on_wire)

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

    # the pipeline

    async def _send(self, batch: ProducerBatch, room: int) -> None:
        """Send ``batch`` and the queued batches that fit with it, behind the requests
        in flight (on the connection they use; a new one when none is in flight)."""
        more = self.buffer.take_more(self._settings.request_bytes - batch.size, room - 1)
        request = self._encode([batch, *more])
        self._window.append(request)
        self._on_wire += len(request.batches)
        try:
            channel = self._channel
            if len(self._window) == 1 or channel is None:
                channel = await self._connect()
            channel.post(self._produce_request(channel), request.body)
        except ChannelClosed as exc:
            await self._stop_pipeline(exc)

    async def _await_answer(self, *, wake: bool) -> None:
        """Until the oldest request is answered (then settle it), or, with ``wake``,
        until records come or the open batch is due."""
        reading = self._answer
        if reading is None:
            reading = self._answer = asyncio.create_task(
                self._read_answer(), name=f"produce answers {self.name}"
            )
        waits: set[asyncio.Future[Any]] = {reading}
        timeout: float | None = None
        woken: asyncio.Task[bool] | None = None
        if wake:
            self._wakeup.clear()
            self.idle = True
            woken = asyncio.create_task(self._wakeup.wait(), name=f"produce records {self.name}")
            waits.add(woken)
            due = self.buffer.due_at(self._settings.linger)
            timeout = None if due is None else max(due - time.monotonic(), 0.0)
        try:
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.idle = False
            if woken is not None:
                woken.cancel()
        if reading.done():
            self._answer = None
            await self._settle_oldest(_outcome(reading))

    async def _read_answer(self) -> ProduceResponse:
        channel = self._channel
        if channel is None:
            raise ChannelClosed(f"no connection to the leader of partition {self.name}")
        settings = self._settings
        response, _ = await channel.receive(timeout=settings.ack_timeout + settings.request_timeout)
        return _produce_response(channel, response)

    async def _settle_oldest(self, outcome: Outcome) -> None:
        """The oldest request's answer: done if it was written, else the pipeline stops."""
        if _written(outcome):
            assert isinstance(outcome, ProduceResponse)
            request = self._window.popleft()
            self._on_wire -= len(request.batches)
            self._delivered(request.batches, outcome.base_offset, 1, duplicate=outcome.duplicate)
        else:
            await self._stop_pipeline(outcome)

    async def _stop_pipeline(self, cause: Outcome) -> None:
        """A request of the window failed (``cause``; the oldest's answer, or a lost
        connection): close the connection, then deliver every request of the window
        again, one at a time, in order (the oldest's next step taken from ``cause``)."""
        answered = await self._stop_reading()
        if answered is not None and _written(answered):
            await self._settle_oldest(answered)  # read before the connection went
        elif answered is not None:
            cause = answered
        await self.close_channel()
        first = True
        while self._window:
            request = self._window[0]
            await self._deliver(request, after=cause if first else None)
            first = False
            self._window.popleft()
            self._on_wire -= len(request.batches)

    async def _stop_reading(self) -> Outcome | None:
        """Stop reading answers; the oldest request's, if it was read meanwhile."""
        reading, self._answer = self._answer, None
        if reading is None:
            return None
        if not reading.done():
            reading.cancel()
        await asyncio.wait({reading})
        return None if reading.cancelled() else _outcome(reading)

    # one request at a time

    def _encode(self, batches: list[ProducerBatch]) -> _Request:
        for batch in batches:
            if batch.wire is None:
                batch.encode(*self.sequence.take(batch.record_count))
        return _Request(batches, _body(batches))

    async def _deliver(self, request: _Request, *, after: Outcome | None = None) -> None:
        """Deliver ``request`` alone, retrying until it is written or fails for good;
        ``after``: the outcome of an attempt already made."""
        settings = self._settings
        batches = request.batches
        first = batches[0]
        deadline = first.opened_at + settings.delivery_timeout
        attempts = 0
        outcome = after
        while True:
            attempts += 1
            if outcome is None:
                try:
                    outcome = await self._attempt(request.body)
                except ChannelClosed as exc:
                    outcome = exc
            code: ErrorCode | None = None
            if isinstance(outcome, ChannelClosed):
                decision, reason = CONNECTION_LOST, str(outcome)
            else:
                response, error = outcome, outcome.error
                if _written(response):
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
            outcome = None
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
                request.body = _body(batches)
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
        channel = await self._connect()
        settings = self._settings
        response, _ = await channel.exchange(
            self._produce_request(channel),
            body,
            timeout=settings.ack_timeout + settings.request_timeout,
        )
        return _produce_response(channel, response)

    async def _connect(self) -> SpuChannel:
        """The connection to the partition's leader (a new one if it moved or broke)."""
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
                route.address, timeout=self._settings.connect_timeout, tls=self._metadata.tls
            )
        return channel

    def _produce_request(self, channel: SpuChannel) -> ProduceRequest:
        settings = self._settings
        return ProduceRequest(
            id=channel.next_id(),
            topic=self.topic,
            partition=self.partition,
            acks=settings.acks,
            timeout_ms=int(settings.ack_timeout * 1000),
        )

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


def _produce_response(channel: SpuChannel, response: object) -> ProduceResponse:
    if not isinstance(response, ProduceResponse):
        kind = getattr(response, "type", type(response).__name__)
        channel.close(f"spu {channel.address} answered a produce with {kind}")
        raise ChannelClosed(f"spu {channel.address} answered a produce with {kind}")
    return response


def _written(outcome: Outcome) -> bool:
    """The leader has the request (written now, or before: a duplicate)."""
    return (
        isinstance(outcome, ProduceResponse)
        and outcome.error is None
        and (outcome.base_offset is not None or outcome.duplicate)
    )


def _outcome(reading: asyncio.Task[ProduceResponse]) -> Outcome:
    """What reading an answer came to (a lost connection is an outcome, not an error)."""
    error = reading.exception()
    if error is None:
        return reading.result()
    if isinstance(error, ChannelClosed):
        return error
    raise error


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
