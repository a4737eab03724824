"""Who is in sync with a partition's leader, and the high watermark that follows (pure).

The leader learns each follower's log end offset from its fetches. A follower is
*caught up* while it holds everything the leader has, and stays caught up for
``lag_time`` seconds after it last did (Kafka's ``replica.lag.time.max.ms``):

- a fetch from at least the leader's LEO: caught up now;
- a fetch from at least the LEO the leader had at the follower's previous fetch:
  caught up as of that previous fetch (a follower that keeps up with a busy leader
  is never exactly at its LEO);
- an append by the leader: every follower that was at the old LEO was caught up
  until this moment (an idle follower parked at the LEO stays in sync however long
  the partition is quiet).

The in-sync set (ISR) holds the followers that are caught up. A follower joins once
it is caught up and holds the high watermark; it leaves once it has not been caught
up for ``lag_time``, but only while the leader may shrink its ISR (it hears from the
SC: a leader cut off from the SC never commits without its followers). The high
watermark is the least LEO over the leader and its ISR, never lower than before, and
does not move while the ISR (leader included) is smaller than ``min_insync``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FollowerProgress:
    """What the leader knows of one follower."""

    leo: int | None = None
    """The follower's log end offset as its last fetch gave it; None before any."""
    caught_up_at: float | None = None
    """When it last held everything the leader had (monotonic seconds)."""
    fetched_at: float | None = None
    """When its last fetch came."""
    leader_leo_at_fetch: int = 0
    """The leader's LEO when that fetch came."""


def assumed_in_sync(leo: int, now: float) -> FollowerProgress:
    """A follower a new leader takes as in sync until it hears from it (it gets
    ``lag_time`` to fetch): it is assumed to hold ``leo``, the leader's own HW."""
    return FollowerProgress(leo=leo, caught_up_at=now)


def after_fetch(
    progress: FollowerProgress, offset: int, leader_leo: int, now: float
) -> FollowerProgress:
    """The follower fetched from ``offset`` (its LEO) while the leader's LEO was
    ``leader_leo``."""
    caught_up_at = progress.caught_up_at
    if offset >= leader_leo:
        caught_up_at = now
    elif progress.fetched_at is not None and offset >= progress.leader_leo_at_fetch:
        caught_up_at = max(caught_up_at or progress.fetched_at, progress.fetched_at)
    return FollowerProgress(
        leo=offset, caught_up_at=caught_up_at, fetched_at=now, leader_leo_at_fetch=leader_leo
    )


def after_append(progress: FollowerProgress, old_leo: int, now: float) -> FollowerProgress:
    """The leader's LEO moved on from ``old_leo``: a follower that was there was caught
    up until now."""
    if progress.leo is not None and progress.leo >= old_leo:
        return dataclasses.replace(progress, caught_up_at=now)
    return progress


def is_caught_up(progress: FollowerProgress, leader_leo: int, now: float, lag_time: float) -> bool:
    if progress.leo is None:
        return False
    if progress.leo >= leader_leo:
        return True
    return progress.caught_up_at is not None and now - progress.caught_up_at <= lag_time


def next_isr(
    isr: frozenset[int],
    followers: Mapping[int, FollowerProgress],
    *,
    leader_leo: int,
    hw: int,
    now: float,
    lag_time: float,
    may_shrink: bool,
) -> frozenset[int]:
    """The in-sync followers after this moment (the leader itself is never listed)."""
    members: set[int] = set()
    for spu, progress in followers.items():
        caught_up = is_caught_up(progress, leader_leo, now, lag_time)
        if spu in isr:
            if caught_up or not may_shrink:
                members.add(spu)
        elif caught_up and progress.leo is not None and progress.leo >= hw:
            members.add(spu)
    return frozenset(members)


def high_watermark(
    hw: int,
    leader_leo: int,
    isr: frozenset[int],
    followers: Mapping[int, FollowerProgress],
    *,
    min_insync: int,
) -> int:
    """The least LEO over the leader and its ISR, never below ``hw``; ``hw`` itself
    while fewer than ``min_insync`` replicas (the leader counts) are in sync."""
    if 1 + len(isr) < min_insync:
        return hw
    leos = [leader_leo]
    for spu in isr:
        leo = followers[spu].leo
        if leo is not None:
            leos.append(leo)
    return max(hw, min(leos))
