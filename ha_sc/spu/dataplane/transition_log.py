"""The log lines of one reconcile's replica transitions: a line each for the first few,
then one line counting the rest by kind.

A store filling hands an SPU hundreds of new replicas per topic (66k at 100k
partitions); a line each ("became leader of ...", "... follows spu ...") was a fifth of
the SPU's CPU while filling. The rest are still logged one by one at debug level.
"""

from __future__ import annotations

import logging
from collections import Counter

LOG_EACH = 20
"""Transitions per reconcile logged a line each at info level."""


class TransitionLog:
    """The transitions of one ``ReplicaRegistry.reconcile``; ``flush`` at its end."""

    def __init__(self, log: logging.Logger, *, each: int = LOG_EACH) -> None:
        self._log = log
        self._each = each
        self._logged = 0
        self._counted: Counter[str] = Counter()

    def note(self, kind: str, message: str, *args: object) -> None:
        """One transition of ``kind`` ("led", "followed"), in ``message % args``."""
        if self._logged < self._each:
            self._logged += 1
            self._log.info(message, *args)
            return
        self._counted[kind] += 1
        self._log.debug(message, *args)

    def flush(self) -> None:
        """Log how many transitions were not logged a line each, then start afresh."""
        if self._counted:
            self._log.info(
                "and %d more replicas: %s",
                sum(self._counted.values()),
                ", ".join(f"{count} {kind}" for kind, count in sorted(self._counted.items())),
            )
        self._logged = 0
        self._counted.clear()
