"""Where a follower cuts its log so that it never keeps a history its leader lacks (pure).

Records below a replica's own high watermark were committed: every in-sync replica
had them, so any leader the SC may elect has them too, at the same offsets. Records
above it may not have reached the leader (or may differ there: a deposed leader's
uncommitted tail). So a replica that starts following a leader (added as a follower,
demoted, or told of another leader) first cuts its log at its own HW and fetches the
rest again. Its HW, not the new leader's: the new leader's HW may already have
passed the offset where the two logs part (it commits what it writes after its
promotion), so cutting there could keep records the new leader never had.

Later, what the leader sends decides: a batch that overlaps the follower's end (the
logs part inside it) cuts the follower back to the batch's start; a leader whose log
ends before the follower's (it lost records it never committed) cuts the follower to
the lesser of the leader's LEO and its own HW.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ha_sc.spu.storage import BatchHeader


def cut_to_follow(hw: int, leo: int) -> int | None:
    """Where a replica cuts its log before following a leader; None: nothing to cut."""
    return hw if hw < leo else None


def cut_for_shorter_leader(hw: int, leo: int, leader_leo: int) -> int | None:
    """Where a follower cuts when the leader's log ends at ``leader_leo``, before its own."""
    if leader_leo >= leo:
        return None
    return min(hw, leader_leo)


class Gap(ValueError):
    """The leader's batches start past the follower's log end."""


@dataclass(frozen=True, slots=True)
class ReplicationStep:
    """What a follower does with the batches of one fetch response."""

    skip: int
    """Batches to drop from the front: the follower has them already."""
    cut: int | None
    """Truncate the log here first (a batch straddles the follower's end)."""


def replication_step(leo: int, headers: Sequence[BatchHeader]) -> ReplicationStep:
    """How batches read from the leader from offset ``leo`` line up with the follower's
    log ending at ``leo``. Raises Gap if the first kept batch starts past it."""
    skip = 0
    for header in headers:
        if header.next_offset > leo:
            break
        skip += 1
    if skip == len(headers):
        return ReplicationStep(skip, None)
    first = headers[skip]
    if first.base_offset > leo:
        raise Gap(f"the leader's batch starts at {first.base_offset}, past the log end {leo}")
    return ReplicationStep(skip, first.base_offset if first.base_offset < leo else None)
