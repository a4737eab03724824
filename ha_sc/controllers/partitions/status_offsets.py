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

from ha_sc.model.partition import PartitionSpec, PartitionStatus, ReplicaStatus


@dataclass(frozen=True, slots=True)
class ReportedOffsets:
    """One replica's offsets as its SPU last reported them."""

    leo: int
    hw: int
    lsr: int | None = None


def with_reported_offsets(
    status: PartitionStatus, spec: PartitionSpec, reported: Mapping[int, ReportedOffsets]
) -> PartitionStatus:
    """``status`` with the reported offsets; the same object when nothing differs."""
    if not reported:
        return status
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
