"""Tunables of the cache dispatchers."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class DispatcherSettings:
    """How a dispatcher keeps its store in step with the KV."""

    resync_interval: float | None = 300.0
    """Seconds between reconciliations (re-list and full sync); None turns them off.
    A safety net only: the watch brings every change, and a re-list decodes only the
    entries whose KV revision differs from the cached object's."""
    retry_initial: float = 0.1
    """Seconds before the first retry of a listing the KV could not serve."""
    retry_max: float = 5.0
    """Longest wait between listing retries; the wait doubles up to this."""

    def __post_init__(self) -> None:
        if self.resync_interval is not None and self.resync_interval <= 0:
            raise ValueError(f"resync_interval must be > 0, not {self.resync_interval}")
        if not 0 < self.retry_initial <= self.retry_max:
            raise ValueError(
                f"need 0 < retry_initial <= retry_max, got {self.retry_initial} "
                f"and {self.retry_max}"
            )
