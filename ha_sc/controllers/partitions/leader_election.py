"""Choosing a partition's next leader when its leader SPU is gone.

In sync: a replica is in sync when its log end offset (``leo``) has reached the
high watermark (``hw``) the leader last reported, i.e. it holds every committed
record, so electing it loses nothing that was acknowledged as committed. While
the leader has reported no high watermark (``hw`` -1: nothing committed that
the SC knows of) every replica counts as in sync.

Fluvio's SC scores an online follower by its LEO lag behind the leader's LEO
and accepts a lag below 4 records; its LSR counts the followers whose LEO equals
the leader's. The rule here is the safer one the high watermark allows: any
follower holding all committed records may lead, and among them the one with
the least lag (the highest LEO) wins, ties going to the earlier replica in the
spec's replica list (the preferred order).
"""

from collections.abc import Container

from ha_sc.model.partition import PartitionSpec, PartitionStatus, ReplicaStatus


def is_in_sync(replica: ReplicaStatus, leader_hw: int) -> bool:
    """Whether ``replica`` holds every record up to the leader's high watermark."""
    return leader_hw < 0 or replica.leo >= leader_hw


def choose_leader(
    spec: PartitionSpec, status: PartitionStatus, online: Container[int]
) -> int | None:
    """The online, in-sync replica with the highest LEO, other than the current leader.

    Offsets come from the partition status (its followers and, when the status
    still names an earlier leader, that one too); a replica with no reported
    offsets has LEO -1. None when no replica qualifies.
    """
    reported = {replica.spu: replica for replica in status.replicas}
    reported.setdefault(status.leader.spu, status.leader)
    best: int | None = None
    best_leo = 0
    for spu in spec.replicas:
        if spu == spec.leader or spu not in online:
            continue
        offsets = reported.get(spu, ReplicaStatus(spu=spu))
        if is_in_sync(offsets, status.leader.hw) and (best is None or offsets.leo > best_leo):
            best, best_leo = spu, offsets.leo
    return best
