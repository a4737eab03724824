"""One pass over the cluster: every reducer, on one consistent view of the cache.

A pass plans every object (``plan_cluster``), or only those a ``PlanScope`` names
(``plan_steps``, in slices, or at once through ``run_steps``): the loop names what
changed since its last pass, so a pass over an idle 100k-partition store costs next to
nothing (``plan_scope``). Both run the same
reducers on the same snapshots; a scoped pass leaves out only objects whose plan
could not have changed.
"""

from __future__ import annotations

from collections.abc import Collection, Generator, Iterator, Mapping
from dataclasses import dataclass
from itertools import islice
from typing import TypeVar

from ha_sc.controllers.actions import Action
from ha_sc.controllers.orphans import (
    Judgement,
    OwnedPartitions,
    collect_orphans,
    sort_by_owner,
)
from ha_sc.controllers.partitions.reducer import reduce_partition
from ha_sc.controllers.partitions.status_offsets import ReportedOffsets
from ha_sc.controllers.plan_scope import PlanScope
from ha_sc.controllers.spus.health import reduce_spu_status
from ha_sc.controllers.spus.info import SpuInfo, spu_infos, spus_by_id
from ha_sc.controllers.spus.load import SpuLoad, spu_load
from ha_sc.controllers.topics.reducer import reduce_topic
from ha_sc.controllers.topics.validation import DEFAULT_LIMITS, TopicLimits, partitions_ahead
from ha_sc.model.kinds import Partition, Spu, Topic
from ha_sc.model.topic import TopicResolution

T = TypeVar("T")
SLICE = 2000
"""Partitions planned between two pauses of ``plan_steps``."""
_PLACED = (TopicResolution.PROVISIONED, TopicResolution.DELETING)
"""Topics whose reducer never places replicas, so never reads the SPUs' load."""


@dataclass(frozen=True, slots=True)
class PassPlan:
    """What one pass decided: its writes, and the partitions whose owner it could not
    tell yet (``orphans``: undecided), which the next pass must look at again."""

    actions: list[Action]
    undecided: frozenset[str]


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
    return run_steps(
        plan_steps(
            spus=spus,
            topics=topics,
            partitions=partitions,
            connected=connected,
            reported=reported,
            topics_revision=topics_revision,
            limits=limits,
            settling=settling,
            partitions_revision=partitions_revision,
        )
    ).actions


def run_steps(steps: Generator[None, None, T]) -> T:
    """What a generator of pauses returns, run without pausing."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            result: T = done.value
            return result


def plan_steps(
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
    scope: PlanScope | None = None,
) -> Generator[None, None, PassPlan]:
    """``plan_cluster``'s writes for the objects ``scope`` names (None: every object),
    pausing (a bare ``yield``) after each ``SLICE`` partitions, so a caller on the event
    loop can serve it in between: a pass over 100k partitions is a second of CPU.

    A scoped pass runs no SPU reducer (SPU changes make the loop plan everything),
    reduces the topics ``scope.topics`` names and the partitions ``scope.partitions``
    names; it must name every partition of each topic it names (the topic's reducer
    is given those it owns). The SPUs' load, which only placing a topic reads, is
    counted only when some topic in scope is not placed yet.
    """
    mine = (
        partitions
        if scope is None
        else {k: p for k in scope.partitions if (p := partitions.get(k)) is not None}
    )
    owned = yield from _sorted_by_owner(mine, topics, topics_revision)
    actions: list[Action] = list(collect_orphans(mine, owned.orphans))
    if connected is not None and scope is None:
        for spu in spus.values():
            actions += reduce_spu_status(spu, connected=spu.spec.id in connected)
    infos = spu_infos(spus.values())
    if connected is not None:
        infos = [SpuInfo(i.id, i.rack, i.id in connected) for i in infos]
    skipped = owned.orphans.keys() | owned.undecided
    planned = (
        list(topics.values())
        if scope is None
        else [t for key in sorted(scope.topics) if (t := topics.get(key)) is not None]
    )
    load: SpuLoad = {}
    if scope is None or any(t.status.resolution not in _PLACED for t in planned):
        # orphans and undecided partitions count for no SPU; a scoped pass judged only its
        # own, but those outside it were owned when last judged (an orphan or an
        # undecided one is in every scope until it is gone)
        load = yield from _load(partitions, skipped)
    ahead, _ = partitions_ahead(topics.values(), limits)
    behind = _topics_behind(mine, owned.undecided)
    for topic in planned:
        if topic.key in behind:
            continue  # the store holds a newer topic of this name: decided once cached
        actions += reduce_topic(
            topic,
            spus=infos,
            partitions=owned.by_topic.get(topic.key, {}),
            load=load,
            limits=limits,
            partitions_elsewhere=ahead[topic.key],
            settling=settling,
            partitions_revision=partitions_revision,
        )
    by_id = spus_by_id(infos)
    for n, partition in enumerate(mine.values(), 1):
        if partition.key not in skipped:
            offsets = reported.get(partition.key) if reported else None
            actions += reduce_partition(partition, spus=by_id, reported=offsets)
        if n % SLICE == 0:
            yield
    return PassPlan(actions, owned.undecided)


def _slices(partitions: Mapping[str, Partition]) -> Iterator[dict[str, Partition]]:
    items = iter(partitions.items())
    while chunk := dict(islice(items, SLICE)):
        yield chunk


def _sorted_by_owner(
    partitions: Mapping[str, Partition], topics: Mapping[str, Topic], topics_revision: int
) -> Generator[None, None, OwnedPartitions]:
    """``sort_by_owner``, ``SLICE`` partitions at a time."""
    if len(partitions) <= SLICE:
        return sort_by_owner(partitions, topics, topics_revision=topics_revision)
    by_topic: dict[str, dict[str, Partition]] = {}
    orphans: dict[str, Judgement] = {}
    undecided: set[str] = set()
    for chunk in _slices(partitions):
        part = sort_by_owner(chunk, topics, topics_revision=topics_revision)
        for topic, owned in part.by_topic.items():
            by_topic.setdefault(topic, {}).update(owned)
        orphans.update(part.orphans)
        undecided.update(part.undecided)
        yield
    return OwnedPartitions(by_topic, orphans, frozenset(undecided))


def _load(
    partitions: Mapping[str, Partition], skipped: Collection[str]
) -> Generator[None, None, dict[int, tuple[int, int]]]:
    """``spu_load`` of the partitions not ``skipped``, ``SLICE`` at a time."""
    led: dict[int, int] = {}
    held: dict[int, int] = {}
    for chunk in _slices(partitions):
        counted = (p for k, p in chunk.items() if k not in skipped) if skipped else chunk.values()
        for spu, (leads, holds) in spu_load(counted).items():
            led[spu] = led.get(spu, 0) + leads
            held[spu] = held.get(spu, 0) + holds
        yield
    return {spu: (led.get(spu, 0), count) for spu, count in sorted(held.items())}


def _topics_behind(partitions: Mapping[str, Partition], undecided: Collection[str]) -> set[str]:
    """Topics some partition names at a create revision the cache has not reached."""
    return {owner.key for key in undecided if (owner := partitions[key].meta.owner) is not None}
