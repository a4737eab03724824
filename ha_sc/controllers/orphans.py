"""Owned objects whose owner is gone: found on every pass, deleted, never adopted.

Deleting a topic through the API deletes its partitions with it (the KV cascades
to what names the topic as owner). Other ways leave partitions behind: a topic
key deleted by hand (``etcdctl del``), a crash between the chunks of an etcd
cascade. Like Kubernetes' garbage collector for ownerReferences, the leader
collects them: a partition whose owner reference does not name the current owner
is an orphan, and the plan deletes it, fenced by the leader's epoch and
conditional on the revision it read. Level-triggered: an orphan is found from the
cache alone, on any pass, also by a new leader after a failover.

Who owns a partition, judged from its owner reference and the cached topics:

- owner gone: orphan; but a reference without identity on a partition created after
  the revision the cached topics reflect is undecided: a topic create stores its
  partitions in the topic's own write (``topics.provisioned_create``), and the watch of
  partitions may bring them before the watch of topics brings the topic.
- owner present, reference carrying its identity (the owner's create revision):
  equal, owned; older than the owner's, the owner was deleted and created again
  under the same name, so an orphan (never adopted by the new topic, whose
  partitions are created fresh); newer, an orphan too if the cached topics reflect
  the store at or past that revision (the owner it names is gone by then),
  otherwise this replica's view of the owner may be behind the partition's:
  undecided, left alone for a later pass.
- owner present, reference without identity (written by an older version, or in the
  topic's own create write): owned if the partition was created with or after its
  owner, an orphan if before, since a topic's partitions are never created before it.
  Objects decoded without create revisions (0) cannot be told apart and are owned.
- no owner, or an owner kind other than topics: not this collector's business.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from ha_sc.controllers.actions import DeleteObject
from ha_sc.model.kinds import Kind, Partition, Topic


class Ownership(enum.Enum):
    OWNED = "owned"
    ORPHAN = "orphan"
    UNDECIDED = "undecided"
    UNOWNED = "unowned"


@dataclass(frozen=True, slots=True)
class Judgement:
    """Who owns a partition, and why when it is an orphan."""

    ownership: Ownership
    reason: str = ""


_OWNED = Judgement(Ownership.OWNED)
_UNOWNED = Judgement(Ownership.UNOWNED)


def judge_owner(
    partition: Partition, topics: Mapping[str, Topic], *, topics_revision: int = 0
) -> Judgement:
    """Whether ``partition`` belongs to the cached topic its owner reference names;
    ``topics_revision``: the KV revision the cached topics reflect (0: not known)."""
    ref = partition.meta.owner
    if ref is None or ref.kind != Kind.TOPIC.value:
        return _UNOWNED
    topic = topics.get(ref.key)
    if topic is None:
        created = partition.meta.create_revision
        if ref.create_revision is None and topics_revision and created > topics_revision:
            return Judgement(Ownership.UNDECIDED)  # created with its topic, not cached yet
        return Judgement(Ownership.ORPHAN, f"owner topic {ref.key} gone")
    current = topic.meta.create_revision
    if ref.create_revision is not None:
        if current in (0, ref.create_revision):
            return _OWNED
        if ref.create_revision < current:
            return Judgement(
                Ownership.ORPHAN,
                f"owner topic {ref.key} created {ref.create_revision} gone, "
                f"topic {ref.key} now is another one (created {current})",
            )
        if ref.create_revision <= topics_revision:
            return Judgement(
                Ownership.ORPHAN,
                f"owner topic {ref.key} created {ref.create_revision} gone, "
                f"topic {ref.key} now is another one (created {current})",
            )
        return Judgement(Ownership.UNDECIDED)
    created = partition.meta.create_revision
    if 0 < created < current:
        return Judgement(
            Ownership.ORPHAN,
            f"owner topic {ref.key} gone, partition created {created} "
            f"before topic {ref.key} now (created {current})",
        )
    return _OWNED


@dataclass(frozen=True, slots=True)
class OwnedPartitions:
    """The cached partitions sorted by owner: each topic's own, and the orphans."""

    by_topic: Mapping[str, Mapping[str, Partition]]
    """Topic key -> its partitions by key."""
    orphans: Mapping[str, Judgement]
    """Partition key -> why it is an orphan."""
    undecided: frozenset[str]
    """Partitions whose owner this view cannot tell yet: neither owned nor collected."""


def sort_by_owner(
    partitions: Mapping[str, Partition], topics: Mapping[str, Topic], *, topics_revision: int = 0
) -> OwnedPartitions:
    """Every partition judged once (one pass over them, not one per topic)."""
    by_topic: dict[str, dict[str, Partition]] = {}
    orphans: dict[str, Judgement] = {}
    undecided: set[str] = set()
    for key, partition in partitions.items():
        judgement = judge_owner(partition, topics, topics_revision=topics_revision)
        if judgement.ownership is Ownership.OWNED:
            assert partition.meta.owner is not None
            by_topic.setdefault(partition.meta.owner.key, {})[key] = partition
        elif judgement.ownership is Ownership.ORPHAN:
            orphans[key] = judgement
        elif judgement.ownership is Ownership.UNDECIDED:
            undecided.add(key)
    return OwnedPartitions(by_topic, orphans, frozenset(undecided))


def collect_orphans(
    partitions: Mapping[str, Partition], orphans: Mapping[str, Judgement]
) -> list[DeleteObject]:
    """A delete for every orphan, conditional on the revision read (a partition written
    since is judged again on the next pass)."""
    return [
        DeleteObject(
            Kind.PARTITION,
            key,
            partitions[key].meta.revision,
            reason=f"orphaned: {judgement.reason}",
        )
        for key, judgement in sorted(orphans.items())
    ]
