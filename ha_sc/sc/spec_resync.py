"""What an SPU that comes back with a cursor needs: the spec changes since that revision.

No I/O. An SPU's cursor is a store revision its specs reflect (``spec_cursor``: every
change at or below it is in them). The store's revision is the same on every replica,
so any leader can answer it from its own cache: each kind's store turns the revision
into one of its epochs (``spec_epoch_at``) and lists the spec changes and deletes since
(``cursor_changes``). When a store cannot tell (the cursor is above what it reflects,
below its journal's floor, or older than the deletes it still remembers), the SPU gets
a full sync instead.

``replica_resync`` then says, from the set the SPU is to hold now, which replica specs
to send and which partitions to remove: every partition whose spec changed or which
was deleted since the cursor (sent if the SPU hosts it now, removed otherwise: it may
have hosted it then), and every hosted partition of a topic whose spec changed (its
storage settings). Some of these the SPU may already have as sent, or never have held;
applying them again changes nothing, so the result is exactly the set a full sync
would give (``tests/unit/test_spec_resync.py``). SPU specs are few: a resync sends
them all and the SPU replaces its directory with them, as a full sync does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ha_sc.model.partition import PartitionSpec
from ha_sc.model.topic import TopicSpec
from ha_sc.protocol import ReplicaSpec
from ha_sc.store import Changes, GlobalStore, StoreView


def spec_cursor(cache: GlobalStore) -> int:
    """The revision the specs cached now reflect for every kind an SPU is sent.

    One below the lowest kind's: several changes may share a revision (a transaction),
    and a store at revision R may not have applied them all yet.
    """
    return max(0, min(cache.spus.revision, cache.topics.revision, cache.partitions.revision) - 1)


@dataclass(frozen=True, slots=True)
class CursorChanges:
    """The spec changes of the replica specs' kinds after a cursor."""

    topics: Changes[TopicSpec, Any]
    partitions: Changes[PartitionSpec, Any]


def _since(view: StoreView[Any, Any], cursor: int) -> Changes[Any, Any] | None:
    epoch = view.spec_epoch_at(cursor)
    if epoch is None:
        return None
    changes = view.spec_changes_since(epoch)
    return None if changes.is_full_sync else changes


def cursor_changes(cache: GlobalStore, cursor: int) -> CursorChanges | None:
    """The spec changes after ``cursor``; None when the cache cannot tell them all.

    The SPU kind needs no history: a resync sends every SPU spec.
    """
    topics = _since(cache.topics, cursor)
    partitions = _since(cache.partitions, cursor)
    if topics is None or partitions is None or cursor > spec_cursor(cache):
        return None
    return CursorChanges(topics, partitions)


def replica_resync(
    hosted: Mapping[str, ReplicaSpec], changes: CursorChanges
) -> tuple[list[ReplicaSpec], list[str]]:
    """The replica specs to send and the partitions to remove, so that an SPU holding
    what it was sent up to the cursor ends up holding exactly ``hosted``."""
    changed: dict[str, ReplicaSpec] = {}
    removed: dict[str, None] = {}
    for key in [*(p.key for p in changes.partitions.updates), *changes.partitions.deletes]:
        spec = hosted.get(key)
        if spec is not None:
            changed[key] = spec
        else:
            removed[key] = None
    topics = {t.key for t in changes.topics.updates} | set(changes.topics.deletes)
    if topics:
        for key, spec in hosted.items():  # a partition key is "<topic>-<index>"
            if key not in changed and key.rpartition("-")[0] in topics:
                changed[key] = spec
    return list(changed.values()), list(removed)
