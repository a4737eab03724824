"""A partition's status follows its leader SPU; a lost leader is replaced.

One pass, one write at most (both writes below are conditional on the same
revision, so they take two passes):

- Leader SPU online: status ``Online`` with ``status.leader`` naming the spec's
  leader. When the leader changed, the new leader's last reported offsets move
  up from the followers, the old leader joins the followers and ``lsr`` is
  recounted (followers whose LEO equals the leader's, as Fluvio counts it).
- Leader SPU offline (or unregistered): ``choose_leader`` picks an online,
  in-sync follower and the spec gets it as leader. As in Fluvio, only the spec
  changes in that pass ("status happens next cycle"): the next pass sees the
  new leader online and writes ``Online``. Fluvio defines ``ElectionLeaderFound``
  but its SC never writes it; neither does this reducer.
- No candidate: a partition that was being served (``Online`` or
  ``ElectionLeaderFound``) becomes ``LeaderOffline`` and keeps its spec, so it
  comes back when its leader does, or fails over once a follower that is in
  sync comes online. A partition that never had a leader stays ``Offline``
  (Fluvio too marks only an online partition ``LeaderOffline``).

No fail-back: when the preferred (first) replica returns while another replica
leads, the current leader stays. Fluvio elects on an SPU coming online only for
partitions that are not online, and has no preferred-leader rebalancing; a move
back would cost a second leader change for no gain in safety.
"""

from collections.abc import Collection, Mapping

from ha_sc.controllers.actions import Action, UpdateSpec, UpdateStatus
from ha_sc.controllers.partitions.leader_election import choose_leader
from ha_sc.controllers.partitions.status_offsets import (
    ReportedOffsets,
    new_partition_status,
    with_reported_offsets,
)
from ha_sc.controllers.spus.info import SpuInfo
from ha_sc.model.kinds import Kind, Partition
from ha_sc.model.partition import (
    PartitionResolution,
    PartitionSpec,
    PartitionStatus,
    ReplicaStatus,
)

_SERVED = (PartitionResolution.ONLINE, PartitionResolution.ELECTION_LEADER_FOUND)


def reduce_partition(
    partition: Partition,
    *,
    spus: Mapping[int, SpuInfo],
    reported: Mapping[int, ReportedOffsets] | None = None,
) -> list[Action]:
    """The write that brings ``partition`` in line with its SPUs, if any.

    ``reported``: the offsets each SPU last reported for this partition's replica.
    """
    online = {spu_id for spu_id, spu in spus.items() if spu.online}
    spec, status = partition.spec, partition.status
    if reported:  # fresher than the stored status, for the followers above all
        status = with_reported_offsets(status, spec, reported)
    if spec.leader in online:
        if (
            status is partition.status
            and status.resolution is PartitionResolution.ONLINE
            and status.leader.spu == spec.leader
        ):
            return []  # the common case, settled: no copy made
        return _set_status(partition, led_by(status, spec.leader))
    candidate = choose_leader(spec, status, online)
    if candidate is not None:
        new_spec = PartitionSpec(leader=candidate, replicas=list(spec.replicas))
        return [UpdateSpec(Kind.PARTITION, partition.key, partition.meta.revision, new_spec)]
    if status.resolution in _SERVED:
        offline = status.model_copy(update={"resolution": PartitionResolution.LEADER_OFFLINE})
        return _set_status(partition, offline)
    return []


def first_status(spec: PartitionSpec, online: Collection[int]) -> PartitionStatus:
    """The status a partition is created with: the one ``reduce_partition`` would write
    for it once its SPUs report their new, empty replicas, so a new partition needs no
    second write. ``Online`` led by the spec's leader, every replica at offset 0, when
    that SPU is in ``online`` (``new_partition_status``); otherwise ``Offline``, and the
    next pass elects as for any partition."""
    if spec.leader in online:
        return new_partition_status(spec)
    return PartitionStatus()


def led_by(status: PartitionStatus, leader: int) -> PartitionStatus:
    """``status`` as ``Online`` with ``leader`` leading."""
    if status.leader.spu == leader:
        return status.model_copy(update={"resolution": PartitionResolution.ONLINE})
    new_leader = next(
        (replica for replica in status.replicas if replica.spu == leader),
        ReplicaStatus(spu=leader),
    )
    followers = [replica for replica in status.replicas if replica.spu != leader]
    if status.leader.spu >= 0 and all(r.spu != status.leader.spu for r in followers):
        followers.append(status.leader)
    return PartitionStatus(
        resolution=PartitionResolution.ONLINE,
        leader=new_leader,
        replicas=followers,
        lsr=sum(1 for r in followers if r.leo >= 0 and r.leo == new_leader.leo),
        size=status.size,
    )


def _set_status(partition: Partition, status: PartitionStatus) -> list[Action]:
    if status == partition.status:
        return []
    return [UpdateStatus(Kind.PARTITION, partition.key, partition.meta.revision, status)]
