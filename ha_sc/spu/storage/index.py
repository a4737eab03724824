"""The sparse offset index of one segment: offset -> position of the batch it starts.

On disk: 8-byte entries, big-endian ``relative_offset u32, position u32``, where
``relative_offset`` is the batch's base offset minus the segment's. Entries only grow
in both fields. The index is a hint: it can always be rebuilt from the log, and a
lookup only gives where to start scanning.
"""

from __future__ import annotations

import bisect
import os
import struct
from array import array
from pathlib import Path

from ha_sc.durable import replace_atomically, write_all

ENTRY = struct.Struct(">II")


class OffsetIndex:
    """The in-memory copy of a segment's index, appending to its file as it grows."""

    def __init__(self, path: Path, base_offset: int, interval_bytes: int) -> None:
        self.path = path
        self.base_offset = base_offset
        self.interval_bytes = interval_bytes
        self._offsets = array("Q")
        self._positions = array("Q")
        self._fd: int | None = None

    def __len__(self) -> int:
        return len(self._offsets)

    def entries(self) -> list[tuple[int, int]]:
        """(absolute offset, position) pairs, in order."""
        return list(zip(self._offsets, self._positions, strict=True))

    def wants_entry(self, position: int, *, after: int | None = None) -> bool:
        """Whether the batch about to be written at ``position`` gets an entry (``after``:
        the position of an entry about to be added before it)."""
        last = after if after is not None else (self._positions[-1] if self._positions else None)
        return last is None or position - last >= self.interval_bytes

    def add(self, offset: int, position: int) -> None:
        """Add an entry and append it to the file (not fsynced: see ``sync``)."""
        self.add_many([(offset, position)])

    def add_many(self, entries: list[tuple[int, int]]) -> None:
        """Add entries (in order) and append them to the file in one write."""
        if not entries:
            return
        for offset, position in entries:
            self.note(offset, position)
        data = b"".join(ENTRY.pack(offset - self.base_offset, pos) for offset, pos in entries)
        write_all(self._file(), [data])

    def sync(self) -> None:
        """Force the file to the disk (a truncation too; creating it if missing)."""
        os.fsync(self._file())

    def _file(self) -> int:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        return self._fd

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def note(self, offset: int, position: int) -> None:
        """Add an entry in memory only (rebuilding; ``write`` saves them)."""
        self._offsets.append(offset)
        self._positions.append(position)

    def lookup(self, offset: int) -> tuple[int, int]:
        """(offset, position) of the last entry at or before ``offset``; the segment
        start when there is none."""
        at = bisect.bisect_right(self._offsets, offset) - 1
        if at < 0:
            return self.base_offset, 0
        return self._offsets[at], self._positions[at]

    def position_at_or_before(self, position: int) -> int:
        """The position of the last entry at or before ``position``; 0 when there is none."""
        at = bisect.bisect_right(self._positions, position) - 1
        return self._positions[at] if at >= 0 else 0

    def truncate(self, position: int) -> None:
        """Drop the entries at or past ``position`` in the log."""
        keep = bisect.bisect_left(self._positions, position)
        if keep < len(self._positions):
            del self._offsets[keep:], self._positions[keep:]
            os.truncate(self.path, keep * ENTRY.size)

    def encode(self) -> bytes:
        return b"".join(
            ENTRY.pack(offset - self.base_offset, position)
            for offset, position in zip(self._offsets, self._positions, strict=True)
        )

    def write(self) -> None:
        """Replace the file with the entries in memory."""
        self.close()
        replace_atomically(self.path, self.encode())

    def load(self, log_size: int) -> bool:
        """Read the file; False (and nothing loaded) if it is missing or inconsistent:
        a torn entry, an entry not past the one before, or a position past the log."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return False
        if len(data) % ENTRY.size:
            return False
        last_offset, last_position = -1, -1
        loaded = OffsetIndex(self.path, self.base_offset, self.interval_bytes)
        for relative, position in ENTRY.iter_unpack(data):
            if relative <= last_offset or position <= last_position or position >= log_size:
                return False
            loaded.note(self.base_offset + relative, position)
            last_offset, last_position = relative, position
        self._offsets, self._positions = loaded._offsets, loaded._positions
        return True
