"""Checkers of the fencing epochs: no SPU accepts a deposed leader's message, no two
SC replicas lead under one epoch. Pure functions over a ``History``."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from chaos.history.history import History


@dataclass(frozen=True, slots=True)
class StaleAccept:
    spu: int
    t: float
    epoch: int
    """The epoch of the message the SPU accepted."""
    highest_before: int
    """The highest epoch it had accepted before."""


def stale_accepts(history: History) -> list[StaleAccept]:
    """Per SPU, in the order it decided: an accepted control message whose epoch is
    lower than one the SPU had already accepted (restarts included)."""
    highest: dict[int, int] = {}
    found: list[StaleAccept] = []
    for c in history.controls:
        if c.outcome != "accept":
            continue
        before = highest.get(c.spu, 0)
        if c.epoch < before:
            found.append(StaleAccept(c.spu, c.t, c.epoch, before))
        highest[c.spu] = max(before, c.epoch)
    return found


def refusals(history: History) -> dict[int, int]:
    """Control messages each SPU refused (a deposed leader's, stopped by the fence)."""
    counts: dict[int, int] = defaultdict(int)
    for c in history.controls:
        if c.outcome == "refuse":
            counts[c.spu] += 1
    return dict(counts)


def shared_epochs(history: History) -> dict[int, list[str]]:
    """Epochs that more than one replica claimed to lead under (must be none)."""
    claims: dict[int, set[str]] = defaultdict(set)
    for e in history.leaders:
        if e.role == "leader" and e.epoch is not None:
            claims[e.epoch].add(e.replica)
    return {epoch: sorted(r) for epoch, r in sorted(claims.items()) if len(r) > 1}


def leadership_changes(history: History) -> list[tuple[float, str, int]]:
    """(time, replica, epoch) each time a new epoch was first claimed, in order."""
    seen: set[int] = set()
    changes = []
    for e in sorted(history.leaders, key=lambda e: e.t):
        if e.role == "leader" and e.epoch is not None and e.epoch not in seen:
            seen.add(e.epoch)
            changes.append((e.t, e.replica, e.epoch))
    return changes
