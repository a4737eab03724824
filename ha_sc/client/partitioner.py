"""Which partition a record goes to: by its key's hash, else round robin."""

from __future__ import annotations

import zlib


def partition_for_key(key: bytes, partitions: int) -> int:
    """The partition of every record with ``key``: CRC-32 of the key modulo the count.

    Stable across processes and runs (unlike ``hash``), so one key always lands on one
    partition while the partition count stays the same."""
    return zlib.crc32(key) % partitions


class RoundRobin:
    """Hands out partitions in turn, for records without a key."""

    def __init__(self, start: int = 0) -> None:
        self._next = start

    def next(self, partitions: int) -> int:
        chosen = self._next % partitions
        self._next = chosen + 1
        return chosen
