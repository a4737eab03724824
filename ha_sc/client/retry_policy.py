"""What a producer or consumer does about an SPU's error: pure decisions, no I/O."""

from __future__ import annotations

import enum
import random
from collections.abc import Callable
from dataclasses import dataclass

from ha_sc.protocol.data import DataError, ErrorCode


class Next(enum.Enum):
    REROUTE = "reroute"
    """The leader moved (or is unknown): learn where it is, then try again."""
    RETRY = "retry"
    """Try the same leader again after a pause."""
    NEW_PRODUCER = "new_producer"
    """Produce only: the leader lacks earlier records of this producer (a leader change
    lost them) and refused the batch. Go on under a fresh producer id from sequence 0 and
    send the batch again at once."""
    FAIL = "fail"
    """Retrying cannot help: surface the error."""


@dataclass(frozen=True, slots=True)
class Decision:
    next: Next
    pause: bool
    """Pause before the next attempt (False when an SPU named the new leader)."""
    refresh: bool
    """Ask the SC for fresh metadata."""


def after_error(error: DataError) -> Decision:
    """What to do after an SPU answered a produce or fetch with ``error``."""
    code = error.code
    if code is ErrorCode.NOT_LEADER:
        named = error.leader is not None
        return Decision(Next.REROUTE, pause=not named, refresh=not named)
    if code is ErrorCode.UNKNOWN_PARTITION:
        return Decision(Next.REROUTE, pause=True, refresh=True)
    if code in (ErrorCode.TIMEOUT, ErrorCode.STORAGE):
        return Decision(Next.RETRY, pause=True, refresh=code is ErrorCode.STORAGE)
    if code is ErrorCode.OUT_OF_SEQUENCE:
        return Decision(Next.NEW_PRODUCER, pause=False, refresh=False)
    return Decision(Next.FAIL, pause=False, refresh=False)


CONNECTION_LOST = Decision(Next.REROUTE, pause=True, refresh=True)
"""What to do when the connection failed or an answer did not come in time."""


def backoff(
    attempt: int, *, initial: float, maximum: float, draw: Callable[[], float] = random.random
) -> float:
    """Seconds to pause before retry number ``attempt`` (1 for the first).

    Full jitter: a uniform draw below a ceiling that doubles from ``initial`` up to
    ``maximum``, so clients that failed together do not retry together. ``draw``
    gives a number in [0, 1) (tests pass a fixed one)."""
    ceiling = min(initial * 2.0 ** max(attempt - 1, 0), maximum)
    return ceiling * draw()
