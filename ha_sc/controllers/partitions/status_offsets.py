"""A partition's status brought up to the offsets its SPUs last reported.

The SPUs report, per replica they hold, the log end offset (LEO), the high
watermark (HW) and, from the leader, the number of followers in sync (LSR);
the leader SC keeps the latest report of each SPU. The partition's stored
status carries them so that ``choose_leader`` can pick the in-sync follower
with the least lag when the leader is lost, and so that readers see them.
Only the current leader's report sets ``leader`` and ``lsr``; a follower's sets
its entry in ``replicas``; an SPU that reported nothing keeps what is stored.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from ha_sc.model.partition import (
    PartitionResolution,
    PartitionSpec,
    PartitionStatus,
    ReplicaStatus,
)


@dataclass(frozen=True, slots=True)
class ReportedOffsets:
    """One replica's offsets as its SPU last reported them."""

    leo: int
    hw: int
    lsr: int | None = None


def new_partition_status(spec: PartitionSpec) -> PartitionStatus:
    """The status of a partition created now with ``spec``, its leader online: ``Online``
    with the offsets its SPUs will first report, so that their first reports change
    nothing and the partition is written once, not again when they come in.

    A new partition's log is empty on every replica: LEO and HW 0 (what an SPU reports
    for a replica it has just added, from its checkpoint, or 0). A leader SPU takes
    every follower of a partition it starts to lead as in sync, so ``lsr`` is the
    follower count; a follower that does not fetch in time drops out of it there, and
    its next report says so. Choosing a leader from this status is as from the empty
    one: HW 0 marks nothing committed, so every replica still counts as in sync. The
    models are frozen, so partitions with the same replica list share one.
    """
    return _new_partition_status(spec.leader, tuple(spec.replicas))


@lru_cache(maxsize=1024)
def _new_partition_status(leader: int, replicas: tuple[int, ...]) -> PartitionStatus:
    followers = [ReplicaStatus(spu=spu, hw=0, leo=0) for spu in replicas if spu != leader]
    return PartitionStatus(
        resolution=PartitionResolution.ONLINE,
        leader=ReplicaStatus(spu=leader, hw=0, leo=0),
        replicas=followers,
        lsr=len(followers),
    )


def with_reported_offsets(
    status: PartitionStatus, spec: PartitionSpec, reported: Mapping[int, ReportedOffsets]
) -> PartitionStatus:
    """``status`` with the reported offsets; the same object when nothing differs."""
    if not reported or _settled(status, spec, reported):
        return status
    return _with_offsets(status, spec, reported)


def _with_offsets(
    status: PartitionStatus, spec: PartitionSpec, reported: Mapping[int, ReportedOffsets]
) -> PartitionStatus:
    """``with_reported_offsets`` in full: the status rebuilt, then compared."""
    leader = status.leader
    lsr = status.lsr
    mine = reported.get(spec.leader)
    if mine is not None and leader.spu == spec.leader:
        if mine.hw != leader.hw or mine.leo != leader.leo:  # a model only when it differs
            leader = ReplicaStatus(spu=spec.leader, hw=mine.hw, leo=mine.leo)
        if mine.lsr is not None:
            lsr = mine.lsr
    followers = {replica.spu: replica for replica in status.replicas}
    for spu in spec.replicas:
        offsets = reported.get(spu)
        if spu != spec.leader and offsets is not None:
            had = followers.get(spu)
            if had is None or had.hw != offsets.hw or had.leo != offsets.leo:
                followers[spu] = ReplicaStatus(spu=spu, hw=offsets.hw, leo=offsets.leo)
    replicas = [followers[spu] for spu in spec.replicas if spu in followers]
    replicas += [r for spu, r in followers.items() if spu not in spec.replicas]
    if leader == status.leader and lsr == status.lsr and replicas == status.replicas:
        return status
    return status.model_copy(update={"leader": leader, "lsr": lsr, "replicas": replicas})


def _settled(
    status: PartitionStatus, spec: PartitionSpec, reported: Mapping[int, ReportedOffsets]
) -> bool:
    """Whether ``status`` already holds ``reported``, checked without building anything:
    the leader the spec's, and the followers stored once each, in the spec's order, with
    the offsets reported. The common case of every pass over a settled store (each
    partition, every pass: 6 us rebuilt and compared, 2 us this way); False also where
    only the full rebuild can tell."""
    leader = status.leader
    if leader.spu != spec.leader:
        return False
    mine = reported.get(spec.leader)
    if mine is not None and (
        mine.hw != leader.hw
        or mine.leo != leader.leo
        or (mine.lsr is not None and mine.lsr != status.lsr)
    ):
        return False
    stored = status.replicas
    n = 0
    for spu in spec.replicas:
        if spu == spec.leader:
            continue
        if n >= len(stored) or stored[n].spu != spu:
            return False
        offsets = reported.get(spu)
        if offsets is not None and (offsets.hw != stored[n].hw or offsets.leo != stored[n].leo):
            return False
        n += 1
    return n == len(stored)
