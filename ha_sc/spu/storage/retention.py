"""Which old segments retention deletes: pure, no I/O.

Only whole segments go, oldest first, and never the active (last) one. A segment may go
only once all of it is committed (its end offset is at or below the high watermark),
so a follower that is behind can still fetch what it lacks. The oldest segment goes if

* by time: its newest batch's ``max_timestamp_ms`` is more than ``retention_seconds``
  before ``now`` (so timestamps from the future keep a segment), or
* by size: the log is larger than ``retention_bytes``;

and the next oldest is then considered, until one stays.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class SegmentFacts(Protocol):
    @property
    def size(self) -> int: ...
    @property
    def next_offset(self) -> int: ...
    @property
    def max_timestamp_ms(self) -> int | None: ...


def expired_count(
    sealed: Sequence[SegmentFacts],
    *,
    total_bytes: int,
    hw: int,
    now: float,
    retention_seconds: float | None,
    retention_bytes: int | None,
) -> int:
    """How many of the ``sealed`` segments (oldest first, the active one left out)
    retention deletes; ``now`` is seconds since the epoch."""
    count = 0
    for segment in sealed:
        if segment.next_offset > hw:
            break
        too_big = retention_bytes is not None and total_bytes > retention_bytes
        if not too_big and not _too_old(segment, now, retention_seconds):
            break
        total_bytes -= segment.size
        count += 1
    return count


def _too_old(segment: SegmentFacts, now: float, retention_seconds: float | None) -> bool:
    if retention_seconds is None:
        return False
    newest = segment.max_timestamp_ms
    return newest is not None and newest < (now - retention_seconds) * 1000
