"""A batch on its way from ``send`` to an acknowledgement, and the acks handed out for it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ha_sc.client.record_codec import encode_pairs, encode_values
from ha_sc.protocol.record_batch import NO_PRODUCER, NO_SEQUENCE, make_batch, with_producer

Clock = Callable[[], tuple[float, int]]
"""Monotonic seconds (for timeouts) and wall-clock ms since the epoch (for timestamps)."""


def batch_clock() -> tuple[float, int]:
    return time.monotonic(), time.time_ns() // 1_000_000


@dataclass(slots=True)
class ProducerBatch:
    """Records for one partition, sent and acknowledged together.

    Open while records are added; sealed (``payload`` set) once full or due; given its
    producer id and sequence (``wire`` set) when first sent, so retries send the very
    same bytes (unless the leader lost earlier records of the producer: ``resequence``).
    """

    partition: int
    opened_at: float
    """Monotonic time of the first record: the delivery timeout counts from here."""
    first_timestamp_ms: int
    done: asyncio.Future[int]
    """Resolves to the base offset the leader gave the batch."""
    values: list[bytes] = field(default_factory=list)
    keys: list[bytes | None] | None = None
    """None while no record of the batch has a key."""
    size: int = 0
    """Payload bytes so far."""
    payload: bytes | None = None
    max_timestamp_ms: int = 0
    wire: bytes | None = None
    producer_id: int = NO_PRODUCER
    """The producer id ``wire`` carries."""
    base_sequence: int = NO_SEQUENCE
    """The base sequence ``wire`` carries."""

    @property
    def record_count(self) -> int:
        return len(self.values)

    def seal(self, now_ms: int) -> None:
        """Encode the records; no record can be added after this."""
        if self.payload is None:
            self.payload = (
                encode_values(self.values)
                if self.keys is None
                else encode_pairs(self.keys, self.values)
            )
            self.max_timestamp_ms = max(now_ms, self.first_timestamp_ms)

    def encode(self, producer_id: int, base_sequence: int) -> bytes:
        """The batch as sent, with its producer id and sequence (sealed first)."""
        assert self.payload is not None, "seal the batch before encoding it"
        self.wire = make_batch(
            self.payload,
            record_count=self.record_count,
            first_timestamp_ms=self.first_timestamp_ms,
            max_timestamp_ms=self.max_timestamp_ms,
            producer_id=producer_id,
            base_sequence=base_sequence,
        )
        self.producer_id, self.base_sequence = producer_id, base_sequence
        self.payload = None
        return self.wire

    def resequence(self, producer_id: int, base_sequence: int) -> bytes:
        """The batch as sent, moved to another producer id and sequence (encoded first)."""
        assert self.wire is not None, "encode the batch before moving it"
        self.wire = with_producer(self.wire, producer_id, base_sequence)
        self.producer_id, self.base_sequence = producer_id, base_sequence
        return self.wire


class RecordAck:
    """The acknowledgement of one record: ``await`` it for the record's offset (-1 in the
    one case the leader cannot say: a retry of a batch it wrote too long ago to remember).

    Raises ``ProduceFailed`` (or ``DeliveryTimeout``) if its batch was not delivered.
    """

    __slots__ = ("_batch", "_index", "partition")

    def __init__(self, batch: asyncio.Future[int], index: int, partition: int) -> None:
        self._batch = batch
        self._index = index
        self.partition = partition
        """The partition the record went to."""

    def done(self) -> bool:
        return self._batch.done()

    def __await__(self) -> Generator[Any, None, int]:
        base = yield from self._batch.__await__()
        return base + self._index if base >= 0 else base


@dataclass(frozen=True, slots=True)
class Delivered:
    """Records of one ``send_many`` that went to one partition together."""

    partition: int
    base_offset: int
    record_count: int


class BulkAck:
    """The acknowledgement of a ``send_many``: ``await`` it for where the records went,
    in the order they were given."""

    __slots__ = ("_parts",)

    def __init__(self, parts: Sequence[tuple[ProducerBatch, int, int]]) -> None:
        """``parts``: (batch, index of the first record in it, record count)."""
        self._parts = [(batch.done, batch.partition, first, count) for batch, first, count in parts]

    def done(self) -> bool:
        return all(future.done() for future, _, _, _ in self._parts)

    def __await__(self) -> Generator[Any, None, list[Delivered]]:
        delivered = []
        for future, partition, first, count in self._parts:
            base = yield from future.__await__()
            delivered.append(Delivered(partition, base + first if base >= 0 else base, count))
        return delivered
