"""What a pass must plan: the objects whose plan may differ from the last pass's.

Every reducer is a pure function of an object and what it reads (its topic, its
partitions, the SPUs, the offsets reported for it). A pass that reduced every object
and wrote what they asked for leaves nothing to decide for an object until the object
or something it reads changes, or a write it asked for did not land. So the loop plans
only those (``ScopeTracker`` in ``scope_tracker``):

- a partition that changed, was created or deleted, whose reported offsets changed,
  or that an action of the last pass named; with each partition, its topic when the
  partition was created or deleted (the topic's reducer creates missing ones);
- a topic that changed or was deleted, that an action of the last pass named, or that
  is not settled: not placed yet (its placement reads every other topic and the SPUs'
  load) or placed with partitions missing from the cache; with each topic, every
  partition of it (the reducer is given those it owns, and whom a partition belongs
  to is judged from its topic);
- partitions whose owner the last pass could not tell (``orphans``: undecided), each
  pass until it can.

Anything else makes the pass plan everything: the first pass of a term, a change of
SPUs (their health, the connected set) or of ``settling``, an SPU write asked for by
the last pass, a cache that cannot say what changed (a full sync), a scope over half
the store, and a full pass at least every ``full_resync`` seconds, so level-based
reconciling still looks at every object now and then.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass

from ha_sc.controllers.actions import Action
from ha_sc.model.kinds import Kind, Partition, Topic
from ha_sc.model.topic import TopicResolution
from ha_sc.store.global_store import partition_topic


@dataclass(frozen=True, slots=True)
class PlanScope:
    """The topics and partitions (by key) one pass plans."""

    topics: frozenset[str]
    partitions: frozenset[str]

    @property
    def is_empty(self) -> bool:
        return not (self.topics or self.partitions)


@dataclass(frozen=True, slots=True)
class CarriedOver:
    """What the actions of a pass name, for the next pass to plan again: its writes may
    not land (refused, store unavailable), and then nothing in the cache changes."""

    topics: frozenset[str] = frozenset()
    partitions: frozenset[str] = frozenset()
    spus: bool = False
    """An SPU write: the next pass plans everything."""


def carried_over(actions: Iterable[Action], undecided: Iterable[str] = ()) -> CarriedOver:
    """The objects ``actions`` name (a partition create names its owner topic too), and
    the ``undecided`` partitions."""
    topics: set[str] = set()
    partitions: set[str] = set(undecided)
    spus = False
    for action in actions:
        if action.kind is Kind.PARTITION:
            partitions.add(action.key)
        elif action.kind is Kind.TOPIC:
            topics.add(action.key)
        else:
            spus = True
        owner = getattr(action, "owner", None)
        if owner is not None and owner.kind == Kind.TOPIC.value:
            topics.add(owner.key)
    return CarriedOver(frozenset(topics), frozenset(partitions), spus)


def scope_of_changes(
    *,
    carry: CarriedOver,
    topics_changed: Iterable[str],
    partitions_changed: Iterable[Partition],
    partitions_deleted: Iterable[str],
    before: Mapping[str, Partition],
    topics: Iterable[Topic],
    keys_in: Callable[[str], Collection[str]],
    moved: Iterable[str] = (),
) -> PlanScope:
    """What a pass must plan, from what changed since the last pass planned.

    ``topics_changed``: topics updated or deleted since; ``partitions_changed`` and
    ``partitions_deleted`` likewise; ``before``: the partitions the last pass planned
    from (a changed partition not among them was created); ``topics``: every cached
    topic now; ``keys_in``: a topic's cached partition keys (the cache's index);
    ``moved``: partitions whose reported offsets changed.
    """
    scoped_topics = set(carry.topics)
    scoped_topics.update(topics_changed)
    partitions = set(carry.partitions)
    partitions.update(moved)
    for partition in partitions_changed:
        partitions.add(partition.key)
        if partition.key not in before:  # created: its topic checks for the rest
            scoped_topics.add(_topic_of(partition))
    for key in partitions_deleted:
        partitions.add(key)
        was = before.get(key)
        scoped_topics.add(_topic_of(was) if was is not None else partition_topic(key))
    scoped_topics.update(unsettled_topics(topics, keys_in))
    for topic in scoped_topics:
        partitions.update(keys_in(topic))
    return PlanScope(frozenset(scoped_topics), frozenset(partitions))


def unsettled_topics(
    topics: Iterable[Topic], keys_in: Callable[[str], Collection[str]]
) -> list[str]:
    """Topics not placed yet, or placed with partitions the cache does not hold."""
    unsettled = []
    for topic in topics:
        resolution = topic.status.resolution
        if resolution is TopicResolution.DELETING:
            continue
        if resolution is not TopicResolution.PROVISIONED or len(keys_in(topic.key)) != len(
            topic.status.replica_map
        ):
            unsettled.append(topic.key)
    return unsettled


def _topic_of(partition: Partition) -> str:
    owner = partition.meta.owner
    return owner.key if owner is not None else partition_topic(partition.key)
