"""What an SPU that comes back with a cursor needs: the spec changes since that revision.

No I/O. An SPU's cursor is the store revisions its specs reflect, one for topics and
one for partitions (``spec_cursor``: every change of that kind at or below it is in
them). The store's revisions are the same on every replica, so any leader can answer
a cursor from its own cache, kind by kind:

- **What changed**: each kind's store turns the revision into one of its epochs
  (``spec_epoch_at``, its revision journal) and lists the spec changes since. Where the
  journal cannot tell (the cursor is below its floor: this replica started, or
  re-listed something that moved, after the cursor), every cached object whose spec
  may have been written after the cursor counts as changed (``spec_written_after``:
  for an object a listing brought, its revision then; status-only writes seen as
  events do not count).
- **What is gone**: not from history. A resync carries the key of every partition the
  SPU is to hold (``replicas_held``); the SPU drops any other. Deletes, partitions that
  moved off the SPU and whatever a replica never saw need no tombstones.

``replica_resync`` gives the replica specs to send: every hosted partition whose spec
changed since the cursor, or whose topic's spec did (its storage settings), taken from
``keys_to_resend``, which is the same for every SPU and worked out once per cursor. The SPU
may already hold some of them as sent; setting them again changes nothing, so the
result is exactly the set a full sync would give (``tests/unit/test_spec_resync.py``).
SPU specs are few: a resync sends them all and the SPU replaces its directory with
them, as a full sync does. The only cursor no leader answers is one above what its
cache reflects (say, a store restored from an older copy): a full sync then.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ha_sc.protocol import ReplicaSpec, SpecCursor
from ha_sc.store import GlobalStore, StoreView


def spec_cursor(cache: GlobalStore) -> SpecCursor:
    """What the topic and partition specs cached now reflect: each kind's settled
    revision (one below the last event's: the events of a transaction share a revision
    and arrive one by one)."""
    return SpecCursor.model_construct(
        topics=cache.topics.settled_revision, partitions=cache.partitions.settled_revision
    )


@dataclass(frozen=True, slots=True)
class CursorChanges:
    """Keys of the topics and partitions whose spec may have changed after a cursor."""

    topics: frozenset[str]
    partitions: frozenset[str]
    from_journal: bool
    """Both told by the revision journals; False: by looking at every object's
    ``spec_revision``."""

    topics_cached: frozenset[str] | None = None
    """When scanned: every cached topic (a topic deleted since cannot be found by
    scanning; its partitions' storage settings are the defaults now)."""


def _changed_since(view: StoreView[Any, Any], cursor: int) -> tuple[frozenset[str], bool]:
    """Keys written (or deleted, where the journal tells) after ``cursor``; whether the
    journal told them."""
    epoch = view.spec_epoch_at(cursor)
    if epoch is not None:
        changes = view.spec_changes_since(epoch)
        if not changes.is_full_sync:
            return frozenset((*(o.key for o in changes.updates), *changes.deletes)), True
    return frozenset(view.spec_written_after(cursor)), False


def cursor_changes(cache: GlobalStore, cursor: SpecCursor) -> CursorChanges | None:
    """The topics and partitions changed after ``cursor``; None when the cache does
    not yet reflect ``cursor`` (the SPU then gets a full sync)."""
    now = spec_cursor(cache)
    if cursor.topics > now.topics or cursor.partitions > now.partitions:
        return None
    topics, told = _changed_since(cache.topics, cursor.topics)
    partitions, told_too = _changed_since(cache.partitions, cursor.partitions)
    cached = None if told else frozenset(cache.topics.snapshot())
    return CursorChanges(topics, partitions, told and told_too, cached)


def keys_to_resend(changes: CursorChanges, partitions: StoreView[Any, Any]) -> frozenset[str]:
    """Every cached partition whose replica spec may differ from what an SPU was sent up
    to the cursor: its spec changed, or its topic's did (storage settings), or its topic
    is gone. The same for every SPU: a new leader works it out once per cursor (every
    SPU of a failover names the same one) and each SPU's resync takes its own hosted
    ones from it (``replica_resync``), instead of looking at all 66k it hosts. Looks
    at the changed topics' partitions only (the store's index by topic), or, when the
    journal could not tell, at every cached partition once."""
    keys = set(changes.partitions)
    for topic in changes.topics:
        keys.update(partitions.keys_in(topic))
    cached = changes.topics_cached
    if cached is not None:
        keys.update(key for key in partitions.snapshot() if key.rpartition("-")[0] not in cached)
    return frozenset(keys)


def replica_resync(hosted: Mapping[str, ReplicaSpec], resend: frozenset[str]) -> list[ReplicaSpec]:
    """The replica specs to send so that an SPU holding what it was sent up to the
    cursor, once it drops every partition not in ``hosted``, holds exactly ``hosted``
    (``resend``: ``keys_to_resend``)."""
    return [hosted[key] for key in resend if key in hosted]
