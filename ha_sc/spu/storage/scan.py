"""Walking the batches of a segment file, reading ahead in chunks.

The walk stops at the first batch that is not whole and well-formed (and, when asked,
whose crc or base offset is wrong); ``position`` is then where the good batches end and
``problem`` says what stopped it. Recovery truncates a last segment there.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from ha_sc.protocol.record_batch import (
    HEADER_SIZE,
    BatchHeader,
    MalformedBatch,
    check_crc,
    parse_header,
)

HEADERS_READ_AHEAD = 64 * 1024
"""Read-ahead when only headers are needed (payloads are skipped)."""
VERIFY_READ_AHEAD = 1024 * 1024
"""Read-ahead when every payload is read to check its crc."""


class SegmentScan:
    """One pass over the batches in ``[start, end)`` of an open segment file."""

    def __init__(
        self,
        fd: int,
        *,
        start: int,
        end: int,
        first_offset: int | None = None,
        verify_crc: bool = False,
    ) -> None:
        self._fd = fd
        self._end = end
        self._expected = first_offset
        self._verify = verify_crc
        self._read_ahead = VERIFY_READ_AHEAD if verify_crc else HEADERS_READ_AHEAD
        self._chunk = b""
        self._chunk_at = start
        self.position = start
        """Where the last good batch seen ends."""
        self.problem: str | None = None
        """Why the walk stopped before ``end``; None if it reached it."""

    def __iter__(self) -> Iterator[tuple[int, BatchHeader]]:
        """(position, header) of each good batch."""
        while self.position < self._end:
            try:
                header = self._next_header()
            except MalformedBatch as exc:
                self.problem = f"byte {self.position}: {exc}"
                return
            yield self.position, header
            self.position += header.size
            self._expected = header.next_offset

    def _next_header(self) -> BatchHeader:
        left = self._end - self.position
        if left < HEADER_SIZE:
            raise MalformedBatch(f"{left} bytes left, a partial header")
        header = parse_header(self._window(self.position, HEADER_SIZE))
        if header.size > left:
            raise MalformedBatch(f"batch needs {header.size} bytes, {left} left in the file")
        if self._expected is not None and header.base_offset != self._expected:
            raise MalformedBatch(
                f"base offset {header.base_offset} where {self._expected} was expected"
            )
        if self._verify:
            check_crc(self._window(self.position, header.size), header)
        return header

    def _window(self, position: int, length: int) -> memoryview:
        """``length`` bytes of the file from ``position`` (known to be in the file)."""
        offset = position - self._chunk_at
        if offset < 0 or offset + length > len(self._chunk):
            size = min(max(length, self._read_ahead), self._end - position)
            self._chunk = os.pread(self._fd, size, position)
            self._chunk_at, offset = position, 0
            if len(self._chunk) < length:
                raise MalformedBatch(f"file ends {length - len(self._chunk)} bytes early")
        return memoryview(self._chunk)[offset : offset + length]
