"""What can go wrong with a replica log, beyond a malformed batch (``batch.MalformedBatch``)."""

from __future__ import annotations


class StorageError(Exception):
    """A replica log refused an operation or found its files damaged."""


class LogClosed(StorageError):
    """The log was closed."""


class LogLocked(StorageError):
    """Another ReplicaLog (in this process or another) has the directory open."""


class CorruptLog(StorageError):
    """A closed segment is damaged; recovery only repairs the tail of the last segment."""


class OffsetMismatch(StorageError):
    """A replicated batch does not start at the log end offset."""


class OffsetOutOfRange(StorageError):
    """An offset below the log start offset (deleted by retention, or never held)."""
