"""One tenure of leadership, from won to lost, and the deadline that bounds it."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from election.guard import Guard


@dataclass(frozen=True, slots=True)
class LeaderInfo:
    """Who leads an election now, as any replica observes it."""

    candidate: str
    address: str
    epoch: int


class Term:
    """Leadership held under one epoch.

    Valid until ``lost`` is set or the renew deadline passes on the monotonic
    clock, whichever comes first: a holder paused past its deadline sees
    ``is_valid()`` False the moment it wakes, before any task of its own runs.
    """

    def __init__(self, guard: Guard, *, valid_until: float) -> None:
        self.guard = guard
        self.valid_until = valid_until
        self.lost = asyncio.Event()
        self.lost_reason = ""
        self.won_at = time.monotonic()

    @property
    def epoch(self) -> int:
        return self.guard.epoch

    def is_valid(self) -> bool:
        return not self.lost.is_set() and time.monotonic() < self.valid_until

    def extend(self, renewal_sent_at: float, renew_deadline: float) -> None:
        """A renewal sent at ``renewal_sent_at`` succeeded."""
        self.valid_until = max(self.valid_until, renewal_sent_at + renew_deadline)

    def end(self, reason: str) -> None:
        if not self.lost.is_set():
            self.lost_reason = reason
            self.lost.set()

    def __repr__(self) -> str:
        state = f"lost: {self.lost_reason}" if self.lost.is_set() else "held"
        return f"Term({self.guard}, {state})"
