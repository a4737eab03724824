"""The topic state machine: from a topic and the cluster around it, the writes it needs.

One pass moves a topic at most one step, as Fluvio's topic controller does:

- ``Init`` / ``InvalidConfig``: validate the spec (replica settings; an assigned
  map may name only registered SPUs). Invalid -> ``InvalidConfig`` with the
  reason; valid -> ``Pending``. An invalid topic is validated again on every
  pass, so it leaves ``InvalidConfig`` as soon as it becomes valid: by a spec
  change, or, for an assigned map naming an unknown SPU, when that SPU registers.
  The status is written only when it changes, so an invalid topic costs no writes.
- ``Pending`` / ``InsufficientResources``: validate again (an SPU may have been
  unregistered), then place the replicas: computed topics with
  ``assign_replicas`` over the online SPUs, assigned topics with their own map
  (all named SPUs registered is enough, as in Fluvio; a partition whose leader is
  offline is then the partition controller's business). Placed -> ``Provisioned``
  with the replica map, plus a create for every partition ``topic-N`` not stored
  yet; too few online SPUs -> ``InsufficientResources`` with a reason naming
  them, unless the SPUs are settling (a new leader's grace, ``spu_grace``): SPUs
  online under the previous leader may still be coming over, so the topic stays
  where it is and waits. Level-based: the loop runs this again when SPUs change, so the topic is
  provisioned once enough SPUs are online (and the reason is rewritten while
  the set of online SPUs changes without becoming enough).
- ``Provisioned``: recreate any partition that is missing, from the replica map.
  Spec changes after provisioning are not applied (Fluvio does not either).
- ``Deleting``: nothing. Deleting a topic in the KV deletes its partitions with
  it (they name the topic as owner), so no reducer step and no ``Deleting``
  status are needed; a topic in that status, written by someone else, is left alone.
  Partitions left behind by a topic deleted another way are orphans (``orphans``):
  the partitions given here are the topic's own, never those of an earlier topic
  of the same name. Each names its topic by key and create revision.

The status update comes before the partition creates: the replica map is written
first, so a crash between them leaves a ``Provisioned`` topic whose missing
partitions the next pass creates. Partitions already stored are never rewritten
and keep their replicas when a map is computed, so a pass repeated after a lost
status write places the same partitions the same way.
"""

from collections.abc import Mapping, Sequence

from ha_sc.controllers.actions import Action, CreateObject, UpdateStatus
from ha_sc.controllers.spus.info import SpuInfo
from ha_sc.controllers.spus.load import SpuLoad
from ha_sc.controllers.topics.replica_assignment import InsufficientSpus, assign_replicas
from ha_sc.controllers.topics.validation import DEFAULT_LIMITS, TopicLimits, validate_topic_spec
from ha_sc.model.kinds import Kind, Partition, Topic
from ha_sc.model.meta import OwnerRef
from ha_sc.model.partition import PartitionSpec, PartitionStatus, partition_key
from ha_sc.model.topic import TopicResolution, TopicStatus

PENDING_REASON = "waiting for live spus"
"""The reason a valid, not yet placed topic shows (Fluvio's wording)."""

_VALIDATING = (TopicResolution.INIT, TopicResolution.INVALID_CONFIG)


def reduce_topic(
    topic: Topic,
    *,
    spus: Sequence[SpuInfo],
    partitions: Mapping[str, Partition],
    load: SpuLoad | None = None,
    limits: TopicLimits = DEFAULT_LIMITS,
    partitions_elsewhere: int = 0,
    settling: bool = False,
) -> list[Action]:
    """The writes that move ``topic`` one step through its life cycle.

    ``partitions`` maps partition keys to cached partitions (all of them, or at
    least this topic's); ``load`` is ``spu_load`` of the cached partitions;
    ``limits`` the partition caps and ``partitions_elsewhere`` what the topics
    counted before this one hold (``partitions_ahead``).
    ``settling``: SPUs may still be reconnecting to a new leader, so too few online
    SPUs means wait, not ``InsufficientResources``.
    """
    resolution = topic.status.resolution
    if resolution is TopicResolution.DELETING:
        return []
    if resolution is TopicResolution.PROVISIONED:
        return _create_missing(topic, topic.status.replica_map, partitions)
    problem = validate_topic_spec(
        topic.spec, spus, limits=limits, partitions_elsewhere=partitions_elsewhere
    )
    if problem is not None:
        return _set_status(
            topic, TopicStatus(resolution=TopicResolution.INVALID_CONFIG, reason=problem)
        )
    if resolution in _VALIDATING:
        return _set_status(
            topic, TopicStatus(resolution=TopicResolution.PENDING, reason=PENDING_REASON)
        )
    placement = _place(topic, spus, partitions, load)
    if isinstance(placement, InsufficientSpus):
        if settling:
            return []
        return _set_status(
            topic,
            TopicStatus(resolution=TopicResolution.INSUFFICIENT_RESOURCES, reason=placement.reason),
        )
    provisioned = TopicStatus(resolution=TopicResolution.PROVISIONED, replica_map=placement)
    return [*_set_status(topic, provisioned), *_create_missing(topic, placement, partitions)]


def _place(
    topic: Topic,
    spus: Sequence[SpuInfo],
    partitions: Mapping[str, Partition],
    load: SpuLoad | None,
) -> dict[int, list[int]] | InsufficientSpus:
    replicas = topic.spec.replicas
    if replicas.assigned is not None:
        return replicas.assigned.replica_map()
    assert replicas.computed is not None
    computed = replicas.computed
    return assign_replicas(
        computed.partitions,
        computed.replication_factor,
        spus,
        existing=_stored_replicas(topic.key, computed.partitions, partitions),
        ignore_rack=computed.ignore_rack_assignment,
        load=load,
    )


def _stored_replicas(
    topic: str, count: int, partitions: Mapping[str, Partition]
) -> dict[int, list[int]]:
    """Partition id -> replicas of the topic's partitions already stored."""
    stored = {}
    for pid in range(count):
        partition = partitions.get(partition_key(topic, pid))
        if partition is not None:
            stored[pid] = list(partition.spec.replicas)
    return stored


def _create_missing(
    topic: Topic, replica_map: Mapping[int, list[int]], partitions: Mapping[str, Partition]
) -> list[Action]:
    """Creates for the partitions of ``replica_map`` not stored, first replica leading."""
    owner = OwnerRef(
        kind=Kind.TOPIC.value, key=topic.key, create_revision=topic.meta.create_revision or None
    )
    actions: list[Action] = []
    for pid, replicas in sorted(replica_map.items()):
        key = partition_key(topic.key, pid)
        if key in partitions or not replicas:
            continue
        spec = PartitionSpec(leader=replicas[0], replicas=list(replicas))
        actions.append(CreateObject(Kind.PARTITION, key, spec, PartitionStatus(), owner))
    return actions


def _set_status(topic: Topic, status: TopicStatus) -> list[Action]:
    if status == topic.status:
        return []
    return [UpdateStatus(Kind.TOPIC, topic.key, topic.meta.revision, status)]
