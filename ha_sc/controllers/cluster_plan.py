"""One pass over the whole cluster: every reducer, on one consistent view of the cache."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from ha_sc.controllers.actions import Action
from ha_sc.controllers.partition_offsets import ReportedOffsets
from ha_sc.controllers.partition_reducer import reduce_partition
from ha_sc.controllers.spu_health import reduce_spu_status
from ha_sc.controllers.spu_info import SpuInfo, spu_infos, spus_by_id
from ha_sc.controllers.spu_load import spu_load
from ha_sc.controllers.topic_reducer import reduce_topic
from ha_sc.model.kinds import Kind, Partition, Spu, Topic


def partitions_by_topic(partitions: Mapping[str, Partition]) -> dict[str, dict[str, Partition]]:
    """Partitions grouped by the key of the topic owning them (one pass, not one per topic)."""
    owned: dict[str, dict[str, Partition]] = {}
    for key, partition in partitions.items():
        owner = partition.meta.owner
        if owner is not None and owner.kind == Kind.TOPIC.value:
            owned.setdefault(owner.key, {})[key] = partition
    return owned


def plan_cluster(
    *,
    spus: Mapping[str, Spu],
    topics: Mapping[str, Topic],
    partitions: Mapping[str, Partition],
    connected: Collection[int] | None,
    reported: Mapping[str, Mapping[int, ReportedOffsets]] | None = None,
) -> list[Action]:
    """The writes that bring every object one step closer to what it should be.

    ``connected`` holds the ids of SPUs with a live connection to this leader, or
    None while the leader has not yet given SPUs time to connect: SPU health is
    then left as stored, so a new leader does not fail every partition over.
    ``reported``: partition key -> SPU id -> the offsets that SPU last reported.
    """
    actions: list[Action] = []
    if connected is not None:
        for spu in spus.values():
            actions += reduce_spu_status(spu, connected=spu.spec.id in connected)
    infos = spu_infos(spus.values())
    if connected is not None:
        infos = [SpuInfo(i.id, i.rack, i.id in connected) for i in infos]
    load = spu_load(partitions.values())
    owned = partitions_by_topic(partitions)
    for topic in topics.values():
        actions += reduce_topic(topic, spus=infos, partitions=owned.get(topic.key, {}), load=load)
    by_id = spus_by_id(infos)
    for partition in partitions.values():
        offsets = reported.get(partition.key) if reported else None
        actions += reduce_partition(partition, spus=by_id, reported=offsets)
    return actions
