"""The data-plane side of fencing: refuse control messages from an older epoch."""

from __future__ import annotations

import logging
import threading

log = logging.getLogger("election.fence")


class EpochFence:
    """Admits a message only if its epoch is >= the highest epoch admitted so far.

    An SPU keeps one per election it follows. A message from a deposed leader
    carries an older epoch than its successor's and is refused; refusals are
    counted so operators and tests can see them. Thread-safe.
    """

    def __init__(self, *, name: str = "", highest: int = 0) -> None:
        self.name = name
        self._highest = highest
        self._refused = 0
        self._lock = threading.Lock()

    @property
    def highest(self) -> int:
        """The highest epoch admitted (or given at start, e.g. restored from disk)."""
        return self._highest

    @property
    def refused(self) -> int:
        """How many messages were refused as stale."""
        return self._refused

    def admit(self, epoch: int) -> bool:
        with self._lock:
            if epoch < self._highest:
                self._refused += 1
                refused, highest = self._refused, self._highest
            else:
                if epoch > self._highest:
                    log.info("%s: now following epoch %d", self.name or "fence", epoch)
                self._highest = epoch
                return True
        log.warning(
            "%s: refused a message from stale epoch %d (highest seen %d, %d refused so far)",
            self.name or "fence",
            epoch,
            highest,
            refused,
        )
        return False
