"""The leader's write path: produce requests queue up and are written in groups.

While one group is being written (and fsynced) on an I/O thread, the requests that
arrive queue behind it; the next group takes them all, so one fsync covers many
requests and the event loop never waits on the disk. Followers may fetch a group as
soon as it is written, while the leader fsyncs it (``Replica.note_written``): the two
replicas' fsyncs overlap instead of following each other, and the HW still counts only
what the leader has fsynced (``Replica.synced_leo``). Within a group, requests keep
their arrival order and each is all or nothing: its batches are checked (whole, crc)
and matched against the producers' sequences before anything of the group is
written, and a request with a bad batch (``malformed``) or a sequence gap
(``out_of_sequence``) is refused alone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ha_sc.protocol.data import DataError, ErrorCode
from ha_sc.spu.dataplane.producer_state import (
    Append,
    Duplicate,
    OutOfSequence,
    ProducerTable,
    with_offset,
)
from ha_sc.spu.dataplane.replica import Replica
from ha_sc.spu.storage import MalformedBatch, RawBatch, ReplicaLog, StorageError, iter_batches

log = logging.getLogger("ha_sc.spu.dataplane")


@dataclass(frozen=True, slots=True)
class Written:
    """A request's batches are in the log (or were already: duplicates)."""

    base_offset: int | None
    """The first batch's offset (where it was first written, for a duplicate); None for
    a duplicate older than the producer's remembered window."""
    duplicate: bool
    """Every batch of the request was a duplicate."""
    commit_at: int | None
    """The HW that commits the request: the end of its last known batch."""


WriteOutcome = Written | DataError


def write_group(
    log: ReplicaLog,
    producers: ProducerTable,
    bodies: Sequence[bytes],
    written: Callable[[int], None] | None = None,
) -> list[WriteOutcome]:
    """Append every request body's batches in order, fsyncing once (runs on an I/O
    thread). Between the write and the fsync, ``written`` (if given) is called with the
    new LEO, so followers can fetch the group while the leader's disk works."""
    outcomes: list[WriteOutcome] = []
    to_write: list[RawBatch] = []
    leo = log.leo
    for body in bodies:
        outcome, batches, leo = _plan_request(producers, body, leo)
        outcomes.append(outcome)
        to_write.extend(batches)
    if to_write:
        log.append_many(to_write, sync=False)
        if written is not None:
            written(log.leo)
        log.sync()
    return outcomes


def _plan_request(
    producers: ProducerTable, body: bytes, leo: int
) -> tuple[WriteOutcome, list[RawBatch], int]:
    try:
        batches = list(iter_batches(body))
    except MalformedBatch as exc:
        return _malformed(str(exc)), [], leo
    if not batches:
        return _malformed("a produce request carries no batch"), [], leo
    plan = producers.plan([batch.header for batch in batches])
    refusal = plan.refusal
    if refusal is not None:
        return _out_of_sequence(batches, plan.verdicts, refusal), [], leo
    first: int | None = None
    commit_at: int | None = None
    duplicate = True
    accepted: list[RawBatch] = []
    for index, (batch, verdict) in enumerate(zip(batches, plan.verdicts, strict=True)):
        base: int | None
        if isinstance(verdict, Append):
            header = with_offset(batch.header, leo)
            producers.record(header)
            accepted.append(batch)
            base, leo, duplicate = leo, header.next_offset, False
            commit_at = leo
        else:
            assert isinstance(verdict, Duplicate)
            base = verdict.base_offset
            if verdict.next_offset is not None:
                commit_at = max(commit_at or 0, verdict.next_offset)
        if index == 0:
            first = base
    return Written(first, duplicate, commit_at), accepted, leo


def _malformed(message: str) -> DataError:
    return DataError(code=ErrorCode.MALFORMED, message=message)


def _out_of_sequence(
    batches: list[RawBatch], verdicts: Sequence[object], refusal: OutOfSequence
) -> DataError:
    index = verdicts.index(refusal)
    header = batches[index].header
    return DataError(
        code=ErrorCode.OUT_OF_SEQUENCE,
        message=(
            f"producer {header.producer_id} sent base sequence {header.base_sequence}, "
            f"expected {refusal.expected} (an earlier batch is missing; nothing of this "
            "request was written)"
        ),
    )


class ProduceQueue:
    """Produce requests of one leader replica, written in groups by one task at a time."""

    def __init__(self, replica: Replica, on_written: Callable[[int], None]) -> None:
        self._replica = replica
        self._on_written = on_written
        """Called with the LEO before each group once the group is written."""
        self._pending: list[tuple[bytes, asyncio.Future[WriteOutcome]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._closed: DataError | None = None
        self.groups = 0
        """Groups written (for tests and benchmarks)."""

    def submit(self, body: bytes) -> asyncio.Future[WriteOutcome]:
        future: asyncio.Future[WriteOutcome] = asyncio.get_running_loop().create_future()
        if self._closed is not None:
            future.set_result(self._closed)
            return future
        self._pending.append((body, future))
        if self._writer is None:
            self._writer = asyncio.create_task(self._drain(), name=f"append {self._replica.key}")
        return future

    def close(self, error: DataError) -> None:
        """Refuse what is queued and what comes; a group being written completes."""
        self._closed = error
        pending, self._pending = self._pending, []
        for _, future in pending:
            if not future.done():
                future.set_result(error)

    async def wait_idle(self) -> None:
        """Until the group being written (if any) is done."""
        writer = self._writer
        if writer is not None:
            await asyncio.wait({writer})

    async def _drain(self) -> None:
        try:
            while self._pending:
                group, self._pending = self._pending, []
                old_leo = self._replica.leo
                outcomes = await self._write([body for body, _ in group])
                self.groups += 1
                if self._replica.leo != old_leo:
                    self._on_written(old_leo)
                for (_, future), outcome in zip(group, outcomes, strict=True):
                    if not future.done():
                        future.set_result(outcome)
        finally:
            self._writer = None

    async def _write(self, bodies: list[bytes]) -> list[WriteOutcome]:
        replica = self._replica
        loop = asyncio.get_running_loop()

        def written(leo: int) -> None:  # on the I/O thread
            loop.call_soon_threadsafe(replica.note_written, leo)

        try:
            return await replica.mutate(
                lambda current: write_group(current, replica.producers, bodies, written)
            )
        except (OSError, StorageError) as exc:
            message = f"{replica.key}: {exc}"
        except Exception as exc:
            log.exception("replica %s: write failed", replica.key)
            message = f"{replica.key}: {exc!r}"
        log.error("replica %s: write failed, the log will be reopened: %s", replica.key, message)
        return [DataError(code=ErrorCode.STORAGE, message=message)] * len(bodies)
