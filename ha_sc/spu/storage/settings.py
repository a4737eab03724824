"""How one replica log behaves: segment size, retention and when it reaches the disk."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ha_sc.model.topic import TopicSpec

MAX_SEGMENT_BYTES = 2**31
"""Index entries hold 32-bit file positions; a segment stays well inside them."""


class FsyncPolicy(enum.StrEnum):
    """When appended batches are forced from the OS page cache to the disk.

    Writes go straight to the OS (no buffer in this process), so a process crash
    (SIGKILL, OOM kill) loses nothing that ``append`` returned under any policy;
    the policy only matters when the machine itself stops (power loss, kernel panic).
    """

    ALWAYS = "always"
    """fdatasync after every append, before it returns: an acknowledged batch survives
    a power loss. The safe default."""
    INTERVAL = "interval"
    """fdatasync during an append when ``fsync_interval_ms`` has passed since the last
    one. A power loss can lose every batch appended since the last fsync: up to one
    interval while appends keep coming, and the tail of a burst until the next append,
    ``flush()`` or ``close()``."""
    NEVER = "never"
    """Only ``flush()``, ``close()`` and segment rolls fsync; otherwise the OS writes
    back when it likes (about 30 s on Linux). A power loss can lose anything not yet
    written back."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LogSettings:
    """Settings of one partition replica's log (from the topic spec, plus SPU-wide ones)."""

    segment_bytes: int = 1 << 30
    """A segment is rolled before an append would take it past this size. A batch larger
    than this still goes in, alone in its own segment."""
    retention_seconds: float | None = None
    """A closed segment is deleted once its newest batch's ``max_timestamp_ms`` is older
    than this; None keeps data forever (by time)."""
    retention_bytes: int | None = None
    """Oldest closed segments are deleted while the log holds more than this; None sets
    no size limit."""
    fsync: FsyncPolicy = FsyncPolicy.ALWAYS
    """When appends are fsynced; see ``FsyncPolicy``."""
    fsync_interval_ms: int = 1000
    """The most time between fsyncs under ``FsyncPolicy.INTERVAL``."""
    index_interval_bytes: int = 4096
    """The offset index gets an entry for the first batch of a segment and then for the
    first batch written at least this many bytes after the last entry."""
    hw_checkpoint_interval: float = 1.0
    """Seconds between writes of the high watermark checkpoint (it is also written on
    ``flush()`` and ``close()``)."""

    def __post_init__(self) -> None:
        if not 0 < self.segment_bytes <= MAX_SEGMENT_BYTES:
            raise ValueError(f"segment_bytes must be in 1..{MAX_SEGMENT_BYTES}")
        if self.retention_seconds is not None and self.retention_seconds <= 0:
            raise ValueError("retention_seconds must be positive (or None)")
        if self.retention_bytes is not None and self.retention_bytes <= 0:
            raise ValueError("retention_bytes must be positive (or None)")
        if self.fsync_interval_ms <= 0:
            raise ValueError("fsync_interval_ms must be positive")
        if self.index_interval_bytes <= 0:
            raise ValueError("index_interval_bytes must be positive")
        if self.hw_checkpoint_interval < 0:
            raise ValueError("hw_checkpoint_interval must not be negative")

    @classmethod
    def from_topic(cls, spec: TopicSpec, *, fsync: FsyncPolicy = FsyncPolicy.ALWAYS) -> LogSettings:
        """The settings a topic spec asks for; unset fields keep their defaults."""
        defaults = cls()
        return cls(
            segment_bytes=min(spec.segment_size or defaults.segment_bytes, MAX_SEGMENT_BYTES),
            retention_seconds=spec.retention_time_seconds,
            retention_bytes=spec.max_partition_size,
            fsync=fsync,
        )
