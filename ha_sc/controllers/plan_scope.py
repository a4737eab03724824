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

from collections.abc import Iterable
from dataclasses import dataclass

from ha_sc.controllers.actions import Action
from ha_sc.model.kinds import Kind


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
