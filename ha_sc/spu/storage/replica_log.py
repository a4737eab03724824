"""``ReplicaLog``: the on-disk log of one partition replica.

Synchronous file I/O; a caller on an event loop runs it in a thread. Every public
method takes one lock, so calls from several threads are serialised.
"""

from __future__ import annotations

import bisect
import dataclasses
import fcntl
import itertools
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType

from ha_sc.durable import fsync_dir
from ha_sc.protocol.record_batch import (
    CRC_FROM,
    BatchHeader,
    RawBatch,
    base_offset_prefix,
    check_batch,
)
from ha_sc.spu.storage.checkpoint import HwCheckpoint
from ha_sc.spu.storage.errors import LogClosed, LogLocked, OffsetMismatch, OffsetOutOfRange
from ha_sc.spu.storage.layout import LOCK_NAME, remove_leftovers, segment_bases
from ha_sc.spu.storage.recovery import recover_last_segment
from ha_sc.spu.storage.retention import expired_count
from ha_sc.spu.storage.segment import Segment
from ha_sc.spu.storage.settings import FsyncPolicy, LogSettings

_MAX_RELATIVE_OFFSET = 2**32 - 1


class ReplicaLog:
    """Segments of batches, offsets per record; the last segment takes the appends."""

    def __init__(
        self,
        directory: Path,
        settings: LogSettings,
        segments: list[Segment],
        lock_fd: int,
        clock: Callable[[], float],
    ) -> None:
        self.directory = directory
        self.settings = settings
        self._segments = segments
        self._lock_fd = lock_fd
        self._clock = clock
        self._mutex = threading.Lock()
        self._closed = False
        self._synced_at = clock()
        self._checkpoint = HwCheckpoint(
            directory, interval=settings.hw_checkpoint_interval, clock=clock
        )
        # Data below the log start was committed before retention could drop it.
        self._hw = max(min(self._checkpoint.value or 0, self.leo), self.log_start_offset)

    @classmethod
    def open(
        cls,
        directory: Path,
        settings: LogSettings | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> ReplicaLog:
        """Open (creating if needed) the log in ``directory``, recovering its last segment."""
        settings = settings or LogSettings()
        directory.mkdir(parents=True, exist_ok=True)
        lock_fd = _lock(directory)
        segments: list[Segment] = []
        try:
            bases = segment_bases(directory)
            remove_leftovers(directory, bases)
            interval = settings.index_interval_bytes
            for base, next_base in itertools.pairwise(bases):
                segments.append(Segment.open_sealed(directory, base, next_base, interval))
            if bases:
                segments.append(recover_last_segment(directory, bases[-1], interval))
            else:
                segments.append(Segment.create(directory, 0, interval))
                fsync_dir(directory)
            return cls(directory, settings, segments, lock_fd, clock)
        except BaseException:
            for segment in segments:
                segment.close()
            os.close(lock_fd)
            raise

    @property
    def leo(self) -> int:
        """Log end offset: the offset the next appended record gets."""
        return self._segments[-1].next_offset

    @property
    def hw(self) -> int:
        """High watermark: records below it are committed."""
        return self._hw

    @property
    def checkpointed_hw(self) -> int | None:
        """The high watermark the checkpoint file holds (None: none written yet)."""
        return self._checkpoint.value

    @property
    def log_start_offset(self) -> int:
        """The first offset still held (retention deletes whole segments before it)."""
        return self._segments[0].base_offset

    @property
    def size_bytes(self) -> int:
        """Bytes in the segment files (indexes left out)."""
        return sum(segment.size for segment in self._segments)

    def segment_bases(self) -> list[int]:
        """Base offsets of the segments, oldest first."""
        return [segment.base_offset for segment in self._segments]

    def append(self, batch: bytes) -> tuple[int, int]:
        """Append a batch as leader: it gets base offset LEO. Returns (base offset, new LEO).

        A malformed batch raises ``MalformedBatch`` and nothing is written."""
        header = check_batch(batch)
        with self._mutex:
            self._check_open()
            base = self.leo
            parts: list[bytes | memoryview] = [
                base_offset_prefix(batch, base),
                memoryview(batch)[CRC_FROM:],
            ]
            self._write(parts, dataclasses.replace(header, base_offset=base))
            return base, self.leo

    def append_replicated(self, batch: bytes) -> int:
        """Append a batch fetched from the leader, as is; its base offset must be LEO.
        Returns the new LEO."""
        header = check_batch(batch)
        with self._mutex:
            self._check_open()
            if header.base_offset != self.leo:
                raise OffsetMismatch(
                    f"replicated batch starts at offset {header.base_offset}, "
                    f"but the log ends at {self.leo}"
                )
            self._write([batch], header)
            return self.leo

    def append_many(self, batches: Sequence[RawBatch], *, sync: bool = True) -> list[int]:
        """Append batches as leader, each at the LEO it finds, with one fsync for them all
        (under ``FsyncPolicy.ALWAYS``). The batches must be checked already (``RawBatch``
        from ``iter_batches`` with its crc verified). Returns their base offsets.

        ``sync=False`` leaves the fsync to a later ``sync()`` (the leader lets its
        followers read the batches while its own disk works)."""
        with self._mutex:
            self._check_open()
            bases: list[int] = []
            items: list[tuple[list[bytes | memoryview], BatchHeader]] = []
            base = self.leo
            for raw in batches:
                parts: list[bytes | memoryview] = [
                    base_offset_prefix(raw.data, base),
                    raw.data[CRC_FROM:],
                ]
                header = dataclasses.replace(raw.header, base_offset=base)
                items.append((parts, header))
                bases.append(base)
                base = header.next_offset
            if items:
                self._put_many(items)
                if sync:
                    self._sync_by_policy()
            return bases

    def sync(self) -> None:
        """Force what was appended to the disk as the fsync policy says, like an append
        does. The disk is waited on outside the lock, so reads go on meanwhile; the caller
        makes no other change to the log until this returns (``Replica`` runs changes one
        at a time). A failed fsync closes the log, as in an append."""
        with self._mutex:
            self._check_open()
            active = self._segments[-1]
            now = self._clock()
            if not self._sync_due(now):
                return
        try:
            active.sync()
        except OSError:
            with self._mutex:
                if not self._closed:
                    self._release()
            raise
        self._synced_at = now

    def append_replicated_many(self, batches: Sequence[RawBatch]) -> int:
        """Append batches fetched from the leader, as they are, with one fsync for them
        all; each must start where the one before ends, the first at the LEO. The batches
        must be checked already (``iter_batches`` with the crc verified). Returns the new
        LEO. On ``OffsetMismatch`` the batches before the bad one stay appended."""
        with self._mutex:
            self._check_open()
            items: list[tuple[list[bytes | memoryview], BatchHeader]] = []
            expected = self.leo
            mismatch: OffsetMismatch | None = None
            for raw in batches:
                if raw.header.base_offset != expected:
                    mismatch = OffsetMismatch(
                        f"replicated batch starts at offset {raw.header.base_offset}, "
                        f"but the log ends at {expected}"
                    )
                    break
                items.append(([raw.data], raw.header))
                expected = raw.header.next_offset
            if items:
                self._put_many(items)
                self._sync_by_policy()
            if mismatch is not None:
                raise mismatch
            return self.leo

    def tail_headers(self, max_bytes: int) -> list[BatchHeader]:
        """The headers of the batches in about the last ``max_bytes`` of the log, oldest
        first (from an index entry at or before that point; payloads are not read)."""
        with self._mutex:
            self._check_open()
            headers: list[BatchHeader] = []
            budget = max_bytes
            for segment in reversed(self._segments):
                start = segment.position_before(segment.size - budget)
                headers[:0] = segment.headers_from(start)
                budget -= segment.size - start
                if budget <= 0:
                    break
            return headers

    def set_hw(self, hw: int) -> None:
        """Move the high watermark (checkpointed at most once per
        ``hw_checkpoint_interval``, on flush and close, and at once when it goes down)."""
        with self._mutex:
            self._check_open()
            if not 0 <= hw <= self.leo:
                raise ValueError(f"high watermark {hw} is not in 0..{self.leo} (the LEO)")
            lowered, self._hw = hw < self._hw, hw
            # A checkpoint above the HW could later cover records that are not committed.
            self._checkpoint.offer(hw, force=lowered)

    def read(self, from_offset: int, max_bytes: int, upper: int | None = None) -> bytes:
        """Whole batches as stored, from the one holding ``from_offset`` (its records
        before ``from_offset`` come too), about ``max_bytes`` in all: never more, except
        that the first batch always comes whole so a reader makes progress. Stops before
        a batch whose base offset is ``upper`` or more (``upper=hw``: committed only)."""
        with self._mutex:
            self._check_open()
            if from_offset < self.log_start_offset:
                raise OffsetOutOfRange(
                    f"offset {from_offset} is below the log start offset {self.log_start_offset}"
                )
            limit = self.leo if upper is None else min(upper, self.leo)
            at = self._segment_at(from_offset)
            found = self._segments[at].locate(from_offset) if from_offset < limit else None
            if found is None:
                return b""
            position, budget = found[0], max_bytes
            parts: list[bytes] = []
            for segment in self._segments[at:]:
                chunk = segment.read(position, budget, limit, at_least_one=not parts)
                parts.append(chunk)
                budget -= len(chunk)
                if position + len(chunk) < segment.size or budget <= 0:
                    break
                position = 0
            return b"".join(parts)

    def truncate_to(self, offset: int) -> int:
        """Drop every batch whose base offset is ``offset`` or more. If ``offset`` falls
        inside a batch, that whole batch goes too and LEO becomes its base offset (a batch
        is never split: its crc covers all its records). Returns the new LEO."""
        with self._mutex:
            self._check_open()
            if offset >= self.leo:
                return self.leo
            if offset < self.log_start_offset:
                raise OffsetOutOfRange(
                    f"cannot truncate to {offset}, below the log start {self.log_start_offset}"
                )
            at = self._segment_at(offset)
            for segment in reversed(self._segments[at + 1 :]):
                segment.delete()
            del self._segments[at + 1 :]
            segment = self._segments[at]
            found = segment.locate(offset)
            if found is not None:
                position, header = found
                segment.truncate(position, header.base_offset)
            if self.settings.fsync is not FsyncPolicy.NEVER:
                segment.sync(index=True)
                fsync_dir(self.directory)
            if self._hw > self.leo:
                self._hw = self.leo
                # Before new appends reach past it: the old HW would cover them.
                self._checkpoint.offer(self._hw, force=True)
            return self.leo

    def enforce_retention(self, now: float) -> list[int]:
        """Delete the old segments retention allows (see ``retention.py``); ``now`` is
        seconds since the epoch. Returns the base offsets of the deleted segments."""
        with self._mutex:
            self._check_open()
            sealed = self._segments[:-1]
            count = expired_count(
                sealed,
                total_bytes=self.size_bytes,
                hw=self._hw,
                now=now,
                retention_seconds=self.settings.retention_seconds,
                retention_bytes=self.settings.retention_bytes,
            )
            for segment in sealed[:count]:
                segment.delete()
            del self._segments[:count]
            if count:
                fsync_dir(self.directory)
            return [segment.base_offset for segment in sealed[:count]]

    def flush(self) -> None:
        """Force every appended batch to the disk and checkpoint the high watermark."""
        with self._mutex:
            self._check_open()
            self._flush()

    def close(self) -> None:
        """Flush and release the files; later calls do nothing."""
        with self._mutex:
            if self._closed:
                return
            try:
                self._flush()
            finally:
                self._release()

    def __enter__(self) -> ReplicaLog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _write(self, parts: list[bytes | memoryview], header: BatchHeader) -> None:
        self._put(parts, header)
        self._sync_by_policy()

    def _put(self, parts: list[bytes | memoryview], header: BatchHeader) -> None:
        self._roll_if_full(header)
        self._segments[-1].append(parts, header)

    def _put_many(self, items: list[tuple[list[bytes | memoryview], BatchHeader]]) -> None:
        """Write batches, the ones that go to the same segment in one go, rolling
        segments where ``_roll_if_full`` would."""
        run: list[tuple[list[bytes | memoryview], BatchHeader]] = []
        run_bytes = 0
        for parts, header in items:
            active = self._segments[-1]
            if not self._fits(active.size + run_bytes, active.base_offset, header):
                if run:
                    active.append_many(run)
                    run, run_bytes = [], 0
                self._roll(header)
            run.append((parts, header))
            run_bytes += header.size
        if run:
            self._segments[-1].append_many(run)

    def _fits(self, size: int, segment_base: int, header: BatchHeader) -> bool:
        if size == 0:
            return True
        fits = size + header.size <= self.settings.segment_bytes
        return fits and header.next_offset - segment_base <= _MAX_RELATIVE_OFFSET

    def _sync_due(self, now: float) -> bool:
        """Whether the fsync policy wants an fsync after an append at ``now``."""
        policy = self.settings.fsync
        if policy is FsyncPolicy.NEVER:
            return False
        interval_ms = self.settings.fsync_interval_ms
        return policy is FsyncPolicy.ALWAYS or (now - self._synced_at) * 1000 >= interval_ms

    def _sync_by_policy(self) -> None:
        active = self._segments[-1]
        now = self._clock()
        if not self._sync_due(now):
            return
        try:
            active.sync()
        except OSError:
            # After a failed fsync the page cache may hold data the disk lost;
            # only a reopen (recovery from the files) gives a known state.
            self._release()
            raise
        self._synced_at = now

    def _roll_if_full(self, header: BatchHeader) -> None:
        active = self._segments[-1]
        if not self._fits(active.size, active.base_offset, header):
            self._roll(header)

    def _roll(self, header: BatchHeader) -> None:
        """Seal the active segment and start one at ``header``'s base offset."""
        active = self._segments[-1]
        # Sealed segments are trusted on open, so one is always fsynced when sealed.
        active.sync(index=True)
        interval = self.settings.index_interval_bytes
        self._segments.append(Segment.create(self.directory, header.base_offset, interval))
        fsync_dir(self.directory)

    def _flush(self) -> None:
        self._segments[-1].sync(index=True)
        self._synced_at = self._clock()
        self._checkpoint.offer(self._hw, force=True)

    def _segment_at(self, offset: int) -> int:
        at = bisect.bisect_right(self._segments, offset, key=lambda s: s.base_offset) - 1
        return max(at, 0)

    def _check_open(self) -> None:
        if self._closed:
            raise LogClosed(f"the log in {self.directory} is closed")

    def _release(self) -> None:
        self._closed = True
        for segment in self._segments:
            segment.close()
        os.close(self._lock_fd)


def _lock(directory: Path) -> int:
    fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise LogLocked(f"another ReplicaLog has {directory} open") from None
    return fd
