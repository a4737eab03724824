"""A new topic stored as the topic reducer's first pass would leave it, in one write.

A create used to be two commits in a row, each with a watch back: the API stored the
topic ``Init``, then a controller pass (woken by the echo, planned on a worker thread)
wrote it ``Provisioned`` with its partitions. Nothing that pass decided needs the
topic to be stored first: ``reduce_topic`` of the new topic is a function of the spec
and the cached SPUs and partitions, which the API handler on the leader holds too. So
the handler asks the reducer what the pass would write, and when that is the topic
``Provisioned`` with its partitions (each with its ``first_status``), stores the topic
with that status and the partitions beside it, in one batch write fenced by the term.
The loop then finds the topic settled; anything else (too few SPUs online, an invalid
spec, a partition key still held by an orphan) is the loop's business as before, and
the topic is stored ``Init``.

The partitions carry an owner reference without the topic's identity (its create
revision is not known before the write that creates it): ``orphans.judge_owner`` counts
them the topic's own because they are created with it, never before it (one Raft
command, one etcd transaction or the ones after it), and a later incarnation of the
name is created after them, so they are orphans to it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ha_sc.controllers.actions import CreateObject, UpdateStatus
from ha_sc.controllers.spus.info import SpuInfo
from ha_sc.controllers.spus.load import SpuLoad
from ha_sc.controllers.topics.reducer import reduce_topic
from ha_sc.controllers.topics.validation import DEFAULT_LIMITS, TopicLimits
from ha_sc.model.kinds import Kind, Partition, Topic
from ha_sc.model.meta import ObjectMeta
from ha_sc.model.topic import TopicResolution, TopicSpec, TopicStatus


def provisioned_create(
    name: str,
    spec: TopicSpec,
    *,
    spus: Sequence[SpuInfo],
    partitions: Mapping[str, Partition],
    load: SpuLoad | None = None,
    limits: TopicLimits = DEFAULT_LIMITS,
    partitions_elsewhere: int = 0,
) -> list[CreateObject] | None:
    """The creates that store topic ``name`` provisioned: the topic first, with the
    status ``reduce_topic`` gives a new topic, then its partitions; None when the reducer
    would not provision it in one pass (the topic is then stored ``Init``).

    ``partitions``: every cached partition (a key of the new topic's already held means
    an orphan the loop must collect first); ``load``, ``limits`` and
    ``partitions_elsewhere`` as for ``reduce_topic``.
    """
    new = Topic(meta=ObjectMeta(key=name), spec=spec, status=TopicStatus())
    actions = reduce_topic(
        new,
        spus=spus,
        partitions={},
        load=load,
        limits=limits,
        partitions_elsewhere=partitions_elsewhere,
    )
    if not actions:
        return None
    status, *creates = actions
    if not isinstance(status, UpdateStatus) or not isinstance(status.status, TopicStatus):
        return None
    if status.status.resolution is not TopicResolution.PROVISIONED:
        return None
    parts = [c for c in creates if isinstance(c, CreateObject)]
    if len(parts) != len(creates) or any(c.key in partitions for c in parts):
        return None
    return [CreateObject(Kind.TOPIC, name, spec, status.status, None), *parts]
