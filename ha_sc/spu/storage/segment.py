"""One segment of a replica log: a ``.log`` file of batches and its ``.index``.

Only the last (active) segment is appended to. Writes go straight to the OS with
``writev`` (no buffer in this process); ``sync`` forces them to the disk.
"""

from __future__ import annotations

import os
from pathlib import Path

from ha_sc.durable import write_all
from ha_sc.protocol.record_batch import HEADER_SIZE, BatchHeader, MalformedBatch, parse_header
from ha_sc.spu.storage.errors import CorruptLog
from ha_sc.spu.storage.index import OffsetIndex
from ha_sc.spu.storage.layout import index_path, log_path
from ha_sc.spu.storage.scan import SegmentScan

_datasync = getattr(os, "fdatasync", os.fsync)
IOV_MAX = 1024
"""The most buffers one ``writev`` takes (Linux)."""


class Segment:
    def __init__(
        self, path: Path, fd: int, index: OffsetIndex, *, size: int, next_offset: int
    ) -> None:
        self.path = path
        self.base_offset = index.base_offset
        self.index = index
        self.size = size
        """Bytes in the log file."""
        self.next_offset = next_offset
        """The offset after the last record in this segment."""
        self._fd = fd
        self._max_timestamp_ms: int | None = None
        self._max_timestamp_known = False

    @classmethod
    def create(cls, directory: Path, base_offset: int, index_interval: int) -> Segment:
        path = log_path(directory, base_offset)
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o644)
        index_path(directory, base_offset).unlink(missing_ok=True)
        index = OffsetIndex(index_path(directory, base_offset), base_offset, index_interval)
        segment = cls(path, fd, index, size=0, next_offset=base_offset)
        segment._max_timestamp_known = True
        return segment

    @classmethod
    def open_sealed(
        cls, directory: Path, base_offset: int, next_offset: int, index_interval: int
    ) -> Segment:
        """A segment before the last: trusted (it was fsynced when the next one was
        created); its index is rebuilt if missing or inconsistent."""
        path = log_path(directory, base_offset)
        fd = os.open(path, os.O_RDWR | os.O_APPEND)
        size = os.fstat(fd).st_size
        index = OffsetIndex(index_path(directory, base_offset), base_offset, index_interval)
        if not index.load(size):
            scan = SegmentScan(fd, start=0, end=size, first_offset=base_offset)
            for position, header in scan:
                if index.wants_entry(position):
                    index.note(header.base_offset, position)
            if scan.problem is not None:
                os.close(fd)
                raise CorruptLog(f"{path}: {scan.problem}")
            index.write()
        return cls(path, fd, index, size=size, next_offset=next_offset)

    def append(self, parts: list[bytes | memoryview], header: BatchHeader) -> None:
        """Write one batch (``parts`` joined; ``header`` already carries its base offset)."""
        self.append_many([(parts, header)])

    def append_many(self, batches: list[tuple[list[bytes | memoryview], BatchHeader]]) -> None:
        """Write batches back to back in as few system calls as the OS allows (each
        ``parts`` joined is one batch; its ``header`` carries its base offset)."""
        position = self.size
        parts = [part for batch_parts, _ in batches for part in batch_parts]
        try:
            for start in range(0, len(parts), IOV_MAX):
                write_all(self._fd, parts[start : start + IOV_MAX])
        except OSError:
            os.ftruncate(self._fd, position)  # no half batch left behind
            raise
        entries: list[tuple[int, int]] = []
        for _, header in batches:
            if self.index.wants_entry(position, after=entries[-1][1] if entries else None):
                entries.append((header.base_offset, position))
            position += header.size
            if self._max_timestamp_known:
                self._max_timestamp_ms = _newer(self._max_timestamp_ms, header.max_timestamp_ms)
        self.index.add_many(entries)
        self.size = position
        self.next_offset = batches[-1][1].next_offset

    def locate(self, offset: int) -> tuple[int, BatchHeader] | None:
        """Position and header of the batch holding ``offset``; None if it is past the end."""
        _, start = self.index.lookup(offset)
        scan = SegmentScan(self._fd, start=start, end=self.size)
        for position, header in scan:
            if header.next_offset > offset:
                return position, header
        if scan.problem is not None:
            raise CorruptLog(f"{self.path}: {scan.problem}")
        return None

    def position_before(self, position: int) -> int:
        """Where a batch starts at or before ``position`` (an index entry; 0 if none)."""
        return self.index.position_at_or_before(position)

    def headers_from(self, position: int) -> list[BatchHeader]:
        """The headers of the batches from ``position`` (a batch start) to the end."""
        scan = SegmentScan(self._fd, start=position, end=self.size)
        headers = [header for _, header in scan]
        if scan.problem is not None:
            raise CorruptLog(f"{self.path}: {scan.problem}")
        return headers

    def read(self, position: int, max_bytes: int, upper: int, *, at_least_one: bool) -> bytes:
        """Whole batches from ``position``, up to ``max_bytes`` (one more than that if
        ``at_least_one``), stopping before a batch whose base offset is ``upper`` or more."""
        if max_bytes < HEADER_SIZE and not at_least_one:
            return b""
        buf = os.pread(self._fd, min(max(max_bytes, HEADER_SIZE), self.size - position), position)
        view = memoryview(buf)
        end = 0
        while end + HEADER_SIZE <= len(view):
            try:
                header = parse_header(view[end:])
            except MalformedBatch as exc:
                raise CorruptLog(f"{self.path} byte {position + end}: {exc}") from exc
            if header.base_offset >= upper:
                break
            if end + header.size > len(view):
                if end == 0 and at_least_one:
                    return os.pread(self._fd, header.size, position)
                break
            end += header.size
        return buf if end == len(buf) else buf[:end]

    def truncate(self, position: int, next_offset: int) -> None:
        """Drop every byte from ``position`` on; ``next_offset`` is the new end offset."""
        os.ftruncate(self._fd, position)
        self.index.truncate(position)
        self.size = position
        self.next_offset = next_offset
        self._max_timestamp_known = False

    @property
    def max_timestamp_ms(self) -> int | None:
        """The newest batch's ``max_timestamp_ms``; None for an empty segment."""
        if not self._max_timestamp_known:
            newest: int | None = None
            for _, header in SegmentScan(self._fd, start=0, end=self.size):
                newest = _newer(newest, header.max_timestamp_ms)
            self._max_timestamp_ms, self._max_timestamp_known = newest, True
        return self._max_timestamp_ms

    def sync(self, *, index: bool = False) -> None:
        """Force the log (and, if asked, the index) to the disk."""
        _datasync(self._fd)
        if index:
            self.index.sync()

    def close(self) -> None:
        self.index.close()
        os.close(self._fd)

    def delete(self) -> None:
        self.close()
        self.path.unlink()
        self.index.path.unlink(missing_ok=True)


def _newer(known: int | None, timestamp_ms: int) -> int:
    return timestamp_ms if known is None else max(known, timestamp_ms)
