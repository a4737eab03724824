"""The topic state machine: from a topic and the cluster around it, the writes it needs.

A valid topic goes from ``Init`` to ``Provisioned`` with its partitions in one pass:
the API stored it already validated, and each step in between (Fluvio's ``Init`` ->
``Pending`` -> ``Provisioned``, a pass each) cost a fenced write and a watch back
while deciding nothing the first pass could not. What a pass decides is still a
function of the current state alone, so any status converges from any other:

- ``Init`` / ``InvalidConfig`` / ``Pending`` / ``InsufficientResources``: validate
  the spec (replica settings, partition caps; an assigned map may name only
  registered SPUs). Invalid -> ``InvalidConfig`` with the reason. An invalid topic
  is validated again on every pass, so it leaves ``InvalidConfig`` as soon as it
  becomes valid: by a spec change, or, for an assigned map naming an unknown SPU,
  when that SPU registers. The status is written only when it changes, so an
  invalid topic costs no writes.
- Valid: place the replicas, computed topics with ``assign_replicas`` over the
  online SPUs, assigned topics with their own map (all named SPUs registered is
  enough, as in Fluvio; a partition whose leader is offline is then the partition
  controller's business). Placed -> ``Provisioned`` with the replica map, plus a
  create for every partition ``topic-N`` not stored yet, each created with the
  status the partition reducer would give it next (``first_status``: ``Online``
  when its leader SPU is online). Too few online SPUs -> ``InsufficientResources``
  with a reason naming them, unless the SPUs are settling (a new leader's grace,
  ``spu_grace``): SPUs online under the previous leader may still be coming over,
  so the topic waits, as ``Pending`` ("waiting for live spus") if it was not placed
  or refused yet, else where it is. Level-based: the loop runs this again when SPUs
  change, so the topic is provisioned once enough SPUs are online (and the reason
  is rewritten while the set of online SPUs changes without becoming enough).
- ``Provisioned``: recreate any partition that is missing, from the replica map, once
  the cached partitions reflect the store at the topic's create (the API's create stores
  a topic with its partitions, which the watch of partitions may bring later than the
  watch of topics brings the topic). Spec changes after provisioning are not applied
  (Fluvio does not either).
- ``Deleting``: nothing. Deleting a topic in the KV deletes its partitions with
  it (they name the topic as owner), so no reducer step and no ``Deleting``
  status are needed; a topic in that status, written by someone else, is left alone.
  Partitions left behind by a topic deleted another way are orphans (``orphans``):
  the partitions given here are the topic's own, never those of an earlier topic
  of the same name. Each names its topic by key and create revision.

The status update comes before the partition creates, and the writer sends them in
one batch write (``write_waves``: one Raft command, or etcd transactions in that
order). Should they still land apart (a crash between etcd transactions, a refused
status write), the state is one the next pass finishes from: a ``Provisioned`` topic
has its missing partitions created, and a topic not yet ``Provisioned`` keeps the
replicas of partitions already stored when its map is computed, so a pass repeated
after a lost status write places the same partitions the same way.
"""

from collections.abc import Mapping, Sequence

from ha_sc.controllers.actions import Action, CreateObject, UpdateStatus
from ha_sc.controllers.partitions.reducer import first_status
from ha_sc.controllers.spus.info import SpuInfo
from ha_sc.controllers.spus.load import SpuLoad
from ha_sc.controllers.topics.replica_assignment import InsufficientSpus, assign_replicas
from ha_sc.controllers.topics.validation import DEFAULT_LIMITS, TopicLimits, validate_topic_spec
from ha_sc.model.kinds import Kind, Partition, Topic
from ha_sc.model.meta import OwnerRef
from ha_sc.model.partition import PartitionSpec, partition_key
from ha_sc.model.topic import TopicResolution, TopicStatus

PENDING_REASON = "waiting for live spus"
"""The reason a valid, not yet placed topic shows (Fluvio's wording)."""

_UNPLACED = (TopicResolution.INIT, TopicResolution.INVALID_CONFIG)
"""Resolutions of a topic never placed nor refused placement: settling shows it Pending."""


def reduce_topic(
    topic: Topic,
    *,
    spus: Sequence[SpuInfo],
    partitions: Mapping[str, Partition],
    load: SpuLoad | None = None,
    limits: TopicLimits = DEFAULT_LIMITS,
    partitions_elsewhere: int = 0,
    settling: bool = False,
    partitions_revision: int = 0,
) -> list[Action]:
    """The writes that bring ``topic`` to where the cluster lets it be.

    ``partitions`` maps partition keys to cached partitions (all of them, or at
    least this topic's); ``load`` is ``spu_load`` of the cached partitions;
    ``limits`` the partition caps and ``partitions_elsewhere`` what the topics
    counted before this one hold (``partitions_ahead``).
    ``settling``: SPUs may still be reconnecting to a new leader, so too few online
    SPUs means wait, not ``InsufficientResources``.
    ``partitions_revision``: the KV revision ``partitions`` reflects (0: not known). A
    ``Provisioned`` topic created after it may have its partitions stored with it (the
    API's create) but not cached yet: none is missing until the cache tells.
    """
    resolution = topic.status.resolution
    if resolution is TopicResolution.DELETING:
        return []
    if resolution is TopicResolution.PROVISIONED:
        if 0 < partitions_revision < topic.meta.create_revision:
            return []
        return _create_missing(topic, topic.status.replica_map, partitions, spus)
    problem = validate_topic_spec(
        topic.spec, spus, limits=limits, partitions_elsewhere=partitions_elsewhere
    )
    if problem is not None:
        return _set_status(
            topic, TopicStatus(resolution=TopicResolution.INVALID_CONFIG, reason=problem)
        )
    placement = _place(topic, spus, partitions, load)
    if isinstance(placement, InsufficientSpus):
        if settling:
            if resolution in _UNPLACED:
                pending = TopicStatus(resolution=TopicResolution.PENDING, reason=PENDING_REASON)
                return _set_status(topic, pending)
            return []
        return _set_status(
            topic,
            TopicStatus(resolution=TopicResolution.INSUFFICIENT_RESOURCES, reason=placement.reason),
        )
    provisioned = TopicStatus(resolution=TopicResolution.PROVISIONED, replica_map=placement)
    return [
        *_set_status(topic, provisioned),
        *_create_missing(topic, placement, partitions, spus),
    ]


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
    topic: Topic,
    replica_map: Mapping[int, list[int]],
    partitions: Mapping[str, Partition],
    spus: Sequence[SpuInfo],
) -> list[Action]:
    """Creates for the partitions of ``replica_map`` not stored, first replica leading,
    each with its ``first_status`` (``Online`` when that SPU is online)."""
    online = {spu.id for spu in spus if spu.online}
    owner = OwnerRef(
        kind=Kind.TOPIC.value, key=topic.key, create_revision=topic.meta.create_revision or None
    )
    actions: list[Action] = []
    for pid, replicas in sorted(replica_map.items()):
        key = partition_key(topic.key, pid)
        if key in partitions or not replicas:
            continue
        spec = PartitionSpec(leader=replicas[0], replicas=list(replicas))
        actions.append(CreateObject(Kind.PARTITION, key, spec, first_status(spec, online), owner))
    return actions


def _set_status(topic: Topic, status: TopicStatus) -> list[Action]:
    if status == topic.status:
        return []
    return [UpdateStatus(Kind.TOPIC, topic.key, topic.meta.revision, status)]
