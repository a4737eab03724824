"""Idempotent produce: what each producer last wrote to a partition, and what a new
batch from it is (pure).

A batch with a producer id (not ``NO_PRODUCER``) and a base sequence (not
``NO_SEQUENCE``) is idempotent. Per producer the partition remembers its last
``window`` batches (sequence range and offsets). A new batch is:

- a **duplicate** when its base sequence is that of a remembered batch (the answer
  is the offset it was first written at), or is not past the producer's last
  sequence (older than the window: the offset is no longer known);
- **in sequence** (appended) when it starts right after the producer's last
  sequence, or when the producer is unknown here;
- **out of sequence** when it leaves a gap: refused (``out_of_sequence``), so that a
  retry of the missing batch, coming later, is not mistaken for a duplicate. A gap
  seen by a new leader means the old one acknowledged records this replica never got
  (acks=leader); the producer goes on under a fresh producer id.

Leaders and followers keep the table alike (a follower records every batch it
replicates), so a promoted follower recognises a retry of a batch the old leader
wrote. After an open or a truncation the table is rebuilt from the log's tail.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ha_sc.spu.storage import NO_PRODUCER, NO_SEQUENCE, BatchHeader

WINDOW = 32
"""Batches remembered per producer: more than a producer keeps in flight."""
MAX_PRODUCERS = 10_000
"""Producers remembered per partition; the one that wrote least recently goes first."""


@dataclass(frozen=True, slots=True)
class WrittenBatch:
    base_sequence: int
    last_sequence: int
    base_offset: int
    next_offset: int


@dataclass(frozen=True, slots=True)
class Append:
    """Write it."""


@dataclass(frozen=True, slots=True)
class Duplicate:
    """Already written; not again."""

    base_offset: int | None
    """Where it was first written; None when older than the remembered window."""
    next_offset: int | None


@dataclass(frozen=True, slots=True)
class OutOfSequence:
    """A gap after the producer's last batch; refused."""

    expected: int


Verdict = Append | Duplicate | OutOfSequence


def is_idempotent(header: BatchHeader) -> bool:
    return header.producer_id != NO_PRODUCER and header.base_sequence != NO_SEQUENCE


@dataclass(frozen=True, slots=True)
class RequestPlan:
    """What to do with each batch of one produce request, in order."""

    verdicts: tuple[Verdict, ...]

    @property
    def refusal(self) -> OutOfSequence | None:
        return next((v for v in self.verdicts if isinstance(v, OutOfSequence)), None)


class ProducerTable:
    """The remembered batches of every idempotent producer of one partition replica."""

    def __init__(self, *, window: int = WINDOW, max_producers: int = MAX_PRODUCERS) -> None:
        self._window = window
        self._max_producers = max_producers
        self._producers: collections.OrderedDict[int, collections.deque[WrittenBatch]] = (
            collections.OrderedDict()
        )

    def __len__(self) -> int:
        return len(self._producers)

    @classmethod
    def from_headers(cls, headers: Iterable[BatchHeader], **limits: int) -> ProducerTable:
        """The table a log's batches give (their headers carry their offsets)."""
        table = cls(**limits)
        for header in headers:
            table.record(header)
        return table

    def last_sequence(self, producer_id: int) -> int | None:
        batches = self._producers.get(producer_id)
        return batches[-1].last_sequence if batches else None

    def verdict(self, header: BatchHeader) -> Verdict:
        """What a batch arriving now is, against what was written before."""
        if not is_idempotent(header):
            return Append()
        return _verdict(self._producers.get(header.producer_id), header)

    def plan(self, headers: Sequence[BatchHeader]) -> RequestPlan:
        """The verdict of every batch of one request, each batch seeing the ones before
        it in the request as written."""
        pending: dict[int, collections.deque[WrittenBatch]] = {}
        verdicts: list[Verdict] = []
        for header in headers:
            if not is_idempotent(header):
                verdicts.append(Append())
                continue
            pid = header.producer_id
            known = pending.get(pid, self._producers.get(pid))
            verdict = _verdict(known, header)
            if verdict == Duplicate(_UNWRITTEN, _UNWRITTEN):
                verdict = Duplicate(None, None)  # repeats a batch of this same request
            verdicts.append(verdict)
            if isinstance(verdict, Append):
                batches = collections.deque(known or (), maxlen=self._window)
                batches.append(_written(header, offset=_UNWRITTEN))
                pending[pid] = batches
        return RequestPlan(tuple(verdicts))

    def record(self, header: BatchHeader) -> None:
        """A batch was written at ``header.base_offset`` (leader or follower)."""
        if not is_idempotent(header):
            return
        pid = header.producer_id
        batches = self._producers.get(pid)
        if batches is None:
            batches = self._producers[pid] = collections.deque(maxlen=self._window)
            if len(self._producers) > self._max_producers:
                self._producers.popitem(last=False)
        else:
            self._producers.move_to_end(pid)
        batches.append(_written(header))

    def truncate(self, offset: int) -> None:
        """Forget the batches written at ``offset`` or later (the log was cut there)."""
        for pid in list(self._producers):
            kept = [b for b in self._producers[pid] if b.base_offset < offset]
            if kept:
                self._producers[pid] = collections.deque(kept, maxlen=self._window)
            else:
                del self._producers[pid]


_UNWRITTEN = -1
"""The offsets of a batch planned but not written yet."""


def _written(header: BatchHeader, *, offset: int | None = None) -> WrittenBatch:
    return WrittenBatch(
        base_sequence=header.base_sequence,
        last_sequence=header.base_sequence + header.record_count - 1,
        base_offset=header.base_offset if offset is None else offset,
        next_offset=header.next_offset if offset is None else offset,
    )


def _verdict(batches: collections.deque[WrittenBatch] | None, header: BatchHeader) -> Verdict:
    if not batches:
        return Append()
    for written in reversed(batches):
        if written.base_sequence == header.base_sequence:
            return Duplicate(written.base_offset, written.next_offset)
    last = batches[-1].last_sequence
    if header.base_sequence <= last:
        return Duplicate(None, None)
    if header.base_sequence == last + 1:
        return Append()
    return OutOfSequence(expected=last + 1)


def with_offset(header: BatchHeader, base_offset: int) -> BatchHeader:
    return dataclasses.replace(header, base_offset=base_offset)
