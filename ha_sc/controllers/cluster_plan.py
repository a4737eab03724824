"""One pass over the whole cluster: every reducer, on one consistent view of the cache."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from ha_sc.controllers.actions import Action
from ha_sc.controllers.orphans import collect_orphans, sort_by_owner
from ha_sc.controllers.partitions.reducer import reduce_partition
from ha_sc.controllers.partitions.status_offsets import ReportedOffsets
from ha_sc.controllers.spus.health import reduce_spu_status
from ha_sc.controllers.spus.info import SpuInfo, spu_infos, spus_by_id
from ha_sc.controllers.spus.load import spu_load
from ha_sc.controllers.topics.reducer import reduce_topic
from ha_sc.controllers.topics.validation import DEFAULT_LIMITS, TopicLimits, partitions_ahead
from ha_sc.model.kinds import Partition, Spu, Topic


def plan_cluster(
    *,
    spus: Mapping[str, Spu],
    topics: Mapping[str, Topic],
    partitions: Mapping[str, Partition],
    connected: Collection[int] | None,
    reported: Mapping[str, Mapping[int, ReportedOffsets]] | None = None,
    topics_revision: int = 0,
    limits: TopicLimits = DEFAULT_LIMITS,
    settling: bool = False,
    partitions_revision: int = 0,
) -> list[Action]:
    """The writes that bring every object one step closer to what it should be.

    ``connected`` holds the ids of SPUs with a live connection to this leader, or
    None while the leader has not yet given SPUs time to connect: SPU health is
    then left as stored, so a new leader does not fail every partition over.
    ``reported``: partition key -> SPU id -> the offsets that SPU last reported.
    ``topics_revision``: the KV revision ``topics`` reflects (0: not known); likewise
    ``partitions_revision``.
    ``limits``: the partition caps; of topics that cross the cluster cap together,
    the ones created later become InvalidConfig (``partitions_ahead``).
    ``settling``: within a new leader's grace, SPUs may still be coming over; a
    topic that cannot be placed yet waits instead of becoming InsufficientResources.

    Orphans (partitions whose owner is gone, see ``orphans``) are deleted first, so
    a topic created again under their topic's name gets its partitions created
    fresh, later in the same pass; they count for no topic, no SPU load and get
    no status of their own. A topic whose name a partition gives with a newer
    create revision is left alone: the cache holds an older topic of that name
    than the store, and placing it would write for a topic that is gone.
    """
    owned = sort_by_owner(partitions, topics, topics_revision=topics_revision)
    actions: list[Action] = list(collect_orphans(partitions, owned.orphans))
    if connected is not None:
        for spu in spus.values():
            actions += reduce_spu_status(spu, connected=spu.spec.id in connected)
    infos = spu_infos(spus.values())
    if connected is not None:
        infos = [SpuInfo(i.id, i.rack, i.id in connected) for i in infos]
    skipped = owned.orphans.keys() | owned.undecided
    live = {k: p for k, p in partitions.items() if k not in skipped} if skipped else partitions
    load = spu_load(live.values())
    ahead, _ = partitions_ahead(topics.values(), limits)
    behind = _topics_behind(partitions, owned.undecided)
    for topic in topics.values():
        if topic.key in behind:
            continue  # the store holds a newer topic of this name: decided once cached
        mine = owned.by_topic.get(topic.key, {})
        actions += reduce_topic(
            topic,
            spus=infos,
            partitions=mine,
            load=load,
            limits=limits,
            partitions_elsewhere=ahead[topic.key],
            settling=settling,
            partitions_revision=partitions_revision,
        )
    by_id = spus_by_id(infos)
    for partition in live.values():
        offsets = reported.get(partition.key) if reported else None
        actions += reduce_partition(partition, spus=by_id, reported=offsets)
    return actions


def _topics_behind(partitions: Mapping[str, Partition], undecided: Collection[str]) -> set[str]:
    """Topics some partition names at a create revision the cache has not reached."""
    return {owner.key for key in undecided if (owner := partitions[key].meta.owner) is not None}
