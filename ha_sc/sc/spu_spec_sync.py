"""What one SPU has been sent of the cached SPU and partition specs, and what it needs next.

No I/O: the connection asks for the full sync once, then for a delta whenever
the cache's specs change. Status changes are not the SPU's business and do not
wake it. An SPU gets every SPU spec (it needs its peers' endpoints) and the
replica specs of the partitions it hosts; when a partition moves off it, the
delta removes it.

A replica spec also carries the owning topic's retention and segment settings
(``storage``), read from the cached topic when the spec is built: the stored
partition keeps only its placement, so stored objects stay as they were and a
topic's settings have one home. A topic spec change (or a topic cached after its
partitions) rebuilds its partitions' replica specs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Container, Sequence
from dataclasses import replace
from typing import Any, TypeVar

from ha_sc.model.kinds import Partition, Spu, Topic
from ha_sc.model.meta import StoredObject
from ha_sc.model.partition import PartitionSpec
from ha_sc.model.spu import SpuSpec
from ha_sc.model.topic import TopicSpec
from ha_sc.protocol import Delta, FullSync, ReplicaSpec, ReplicaStorage, SpecCursor
from ha_sc.protocol.messages import NO_STORAGE_SETTINGS
from ha_sc.sc.spec_resync import cursor_changes, keys_to_resend, replica_resync, spec_cursor
from ha_sc.store import ChangeFocus, Changes, GlobalStore, StoreView, partition_topic
from ha_sc.tasks import until_first

log = logging.getLogger(__name__)

T = TypeVar("T")


def replica_storage(topic: TopicSpec | None) -> ReplicaStorage:
    """The storage settings of a topic's replicas (the defaults for an unknown topic)."""
    if topic is None or (
        topic.segment_size is None
        and topic.retention_time_seconds is None
        and topic.max_partition_size is None
    ):
        return NO_STORAGE_SETTINGS
    return ReplicaStorage.model_construct(
        segment_size=topic.segment_size,
        retention_time_seconds=topic.retention_time_seconds,
        max_partition_size=topic.max_partition_size,
    )


def replica_spec(partition: Partition, topic: Topic | None = None) -> ReplicaSpec:
    """The replica spec an SPU gets for a cached partition of the cached ``topic`` (built
    without validating again what the cache holds valid: a full sync builds thousands)."""
    return ReplicaSpec.model_construct(
        partition=partition.key,
        leader=partition.spec.leader,
        replicas=list(partition.spec.replicas),
        storage=replica_storage(topic.spec if topic is not None else None),
        generation=partition.meta.create_revision or None,
    )


def topic_of(partition_key: str) -> str:
    """The topic of a cached partition's key (valid: the cache holds no other)."""
    return partition_topic(partition_key)


SpecVersion = tuple[int, int]
"""The store epochs of the last partition and topic spec changes: what a set of replica
specs was built as of."""


class ReplicaSpecs:
    """Replica specs built once per partition and topic revision and shared by every SPU
    connection of a replica: after a failover every SPU asks for a full sync at once.

    Each SPU's whole set is kept too, with the spec version it is current at: a full
    sync copies it instead of looking at every cached partition (about 0.5 s at 100k,
    and an SPU that gave up waiting asks again), after taking in what changed since.
    """

    def __init__(self, topics: StoreView[TopicSpec, Any] | None = None) -> None:
        self._topics = topics
        self._built: dict[str, tuple[int, int, ReplicaSpec]] = {}
        self._hosted: dict[int | None, tuple[SpecVersion, dict[str, ReplicaSpec]]] = {}
        self._resend: tuple[tuple[int, int, SpecVersion], frozenset[str]] | None = None
        self.warm = False
        """Set by ``keep_warm`` once a pass that began with the cache listed has brought
        every SPU's set up to date: from then on a resync costs what changed since. Read
        from the election's thread (a replica not warm defers to one that is)."""

    def __len__(self) -> int:
        return len(self._built)

    def of(self, partition: Partition) -> ReplicaSpec:
        topic = self._topics.get(topic_of(partition.key)) if self._topics is not None else None
        revision = partition.meta.revision
        topic_revision = topic.meta.revision if topic is not None else -1
        built = self._built.get(partition.key)
        if built is not None and built[:2] == (revision, topic_revision):
            return built[2]
        spec = replica_spec(partition, topic)
        self._built[partition.key] = (revision, topic_revision, spec)
        return spec

    def keep_only(self, keys: set[str]) -> None:
        """Forget partitions no longer in the cache."""
        for key in [k for k in self._built if k not in keys]:
            del self._built[key]

    def built(self, key: str) -> ReplicaSpec | None:
        """The spec built last for partition ``key``, if any (current or not)."""
        entry = self._built.get(key)
        return entry[2] if entry is not None else None

    async def hosted(
        self,
        spu_id: int | None,
        partitions: StoreView[PartitionSpec, Any],
        version: SpecVersion,
    ) -> dict[str, ReplicaSpec]:
        """Partition key -> replica spec of every partition ``spu_id`` hosts (None: all)
        in the cache's ``partitions``, as of ``version`` (the caller's ``spec_version``,
        with no await since); not to be changed.

        A set kept from an earlier version takes in the partition spec changes since,
        and its partitions of topics whose spec changed; otherwise it is built from
        every cached partition. Either goes ``SYNC_SLICE`` partitions between yields to the event
        loop; what changes meanwhile is the next delta's business.
        """
        kept = self._hosted.get(spu_id)
        if kept is not None and kept[0] == version:
            return kept[1]
        convert = hosted_by(spu_id, self)
        changed = self._changed_since(kept, partitions) if kept is not None else None
        if kept is not None and changed is not None:
            hosted = kept[1]
            deleted, updated = changed
            for key in deleted:
                hosted.pop(key, None)
            for n, p in enumerate(updated, 1):
                if (spec := convert(p)) is not None:
                    hosted[p.key] = spec
                else:
                    hosted.pop(p.key, None)
                if n % SYNC_SLICE == 0:
                    await asyncio.sleep(0)
            self._hosted[spu_id] = (version, hosted)
            return hosted
        listed = partitions.objects()
        hosted = {}
        for start in range(0, len(listed), SYNC_SLICE):
            if start:
                await asyncio.sleep(0)
            for p in listed[start : start + SYNC_SLICE]:
                if (spec := convert(p)) is not None:
                    hosted[p.key] = spec
        self._hosted[spu_id] = (version, hosted)
        return hosted

    def _changed_since(
        self,
        kept: tuple[SpecVersion, dict[str, ReplicaSpec]],
        partitions: StoreView[PartitionSpec, Any],
    ) -> tuple[Sequence[str], list[Partition]] | None:
        """For a kept set: the partition keys deleted since, and the partitions to
        convert again (their spec, or their topic's, changed); None when the store can
        no longer tell (its changes reach back no further)."""
        (partition_epoch, topic_epoch), hosted = kept
        changes = partitions.spec_changes_since(partition_epoch)
        if changes.is_full_sync:
            return None
        updated = list(changes.updates)
        topics = self._topics
        if topics is not None and topics.last_change(ChangeFocus.SPEC) != topic_epoch:
            topic_changes = topics.spec_changes_since(topic_epoch)
            if topic_changes.is_full_sync:
                return None
            names = {t.key for t in topic_changes.updates} | set(topic_changes.deletes)
            updated += _other_partitions_of(partitions, names, {p.key for p in updated}, hosted)
        return changes.deletes, updated

    def resend_since(self, cache: GlobalStore, cursor: SpecCursor) -> frozenset[str] | None:
        """``keys_to_resend`` for ``cursor``, kept for the next SPU that names the same
        cursor while no spec changes (the spec changes after a cursor are settled then);
        None when the cache cannot tell (``cursor_changes``)."""
        key = (cursor.topics, cursor.partitions, spec_version(cache))
        if self._resend is not None and self._resend[0] == key:
            return self._resend[1]
        changes = cursor_changes(cache, cursor)
        if changes is None:
            return None
        resend = keys_to_resend(changes, cache.partitions)
        self._resend = (key, resend)
        return resend

    def is_hosted_current(self, spu_id: int | None, version: SpecVersion) -> bool:
        kept = self._hosted.get(spu_id)
        return kept is not None and kept[0] == version


SYNC_SLICE = 5000
"""Partitions a full sync looks at between two yields to the event loop."""
WARM_SLICE = 1000
"""Specs built between two yields to the event loop."""


async def keep_warm(
    specs: ReplicaSpecs,
    cache: GlobalStore,
    *,
    interval: float,
    listed: Callable[[], bool] = lambda: True,
) -> None:
    """Build the replica specs of partitions as they are cached or change (a task, on
    every replica): a standby that wins then sends its first full syncs from specs
    already built (building 67k of them took a new leader about a second per SPU).
    ``interval`` (seconds, ``spu_link.warm_interval``) spaces the passes.
    Each pass also brings each SPU's whole set up to date, for its next full sync or
    resync: built once (a replica that just listed its cache has them within a pass,
    not a second later), then amended by the spec changes since, which cost their
    own number. ``listed()``: whether the cache has been listed (``specs.warm`` is set
    only by a pass that began after it was)."""
    partitions = cache.partitions.listen(focus=ChangeFocus.SPEC)
    while True:
        was_listed = listed()
        changes = partitions.take_changes().updates
        for n, partition in enumerate(changes, 1):
            specs.of(partition)
            if n % WARM_SLICE == 0:
                await asyncio.sleep(0)
        for spu in cache.spus.objects():
            version = spec_version(cache)
            if not specs.is_hosted_current(spu.spec.id, version):
                await specs.hosted(spu.spec.id, cache.partitions, version)
        if was_listed and not specs.warm:
            specs.warm = True
            log.info("replica specs warm: every SPU's set built (%d SPUs)", len(cache.spus))
        await asyncio.sleep(interval)


def spec_version(cache: GlobalStore) -> SpecVersion:
    return (
        cache.partitions.last_change(ChangeFocus.SPEC),
        cache.topics.last_change(ChangeFocus.SPEC),
    )


def hosted_by(spu_id: int | None, specs: ReplicaSpecs) -> Callable[[Partition], ReplicaSpec | None]:
    """The replica spec of a partition ``spu_id`` hosts; None for others (``spu_id``
    None: every partition)."""

    def convert(partition: Partition) -> ReplicaSpec | None:
        if spu_id is not None and spu_id not in partition.spec.replicas:
            return None
        return specs.of(partition)

    return convert


def spu_spec(spu: Spu) -> SpuSpec:
    """The SPU spec as sent: the cached one."""
    return spu.spec


class SpecSync:
    """The cursor of one SPU connection over the cache's specs."""

    def __init__(
        self,
        cache: GlobalStore,
        spu_id: int | None = None,
        *,
        specs: ReplicaSpecs | None = None,
    ) -> None:
        self._cache = cache
        self._specs = specs if specs is not None else ReplicaSpecs(cache.topics)
        self._spu_id = spu_id
        self._replica_spec = hosted_by(spu_id, self._specs)
        self._spus = cache.spus.listen(focus=ChangeFocus.SPEC)
        self._partitions = cache.partitions.listen(focus=ChangeFocus.SPEC)
        self._topics = cache.topics.listen(focus=ChangeFocus.SPEC)
        self._sent_spus: dict[str, SpuSpec] = {}
        """Cache key -> the spec the SPU has; deletes name keys, the SPU knows ids."""
        self._sent_replicas: dict[str, ReplicaSpec] = {}

    async def full_sync(self, epoch: int, trace: dict[str, str] | None = None) -> FullSync:
        """Everything, as of now; the SPU replaces what it had with it.

        Built ``SYNC_SLICE`` partitions between yields to the event loop (67k specs
        take about half a second) unless kept from the last full sync or ``keep_warm``:
        later changes reach the SPU in the next delta, since the cursors moved before
        anything was read.
        """
        self._spus.take_changes()  # the cursors move to now; nothing awaits until we read
        self._partitions.take_changes()
        self._topics.take_changes()
        cursor = spec_cursor(self._cache)
        self._sent_spus = {spu.key: spu_spec(spu) for spu in self._cache.spus.objects()}
        partitions = self._cache.partitions.objects()
        version = spec_version(self._cache)
        hosted = await self._specs.hosted(self._spu_id, self._cache.partitions, version)
        self._sent_replicas = dict(hosted)
        if len(self._specs) > len(partitions):
            self._specs.keep_only({p.key for p in partitions})
        return FullSync(
            epoch=epoch,
            trace=trace or {},
            spus=list(self._sent_spus.values()),
            replicas=list(self._sent_replicas.values()),
            cursor=cursor,
        )

    async def resync(
        self, epoch: int, cursor: SpecCursor, trace: dict[str, str] | None = None
    ) -> Delta | None:
        """The changes since the SPU's ``cursor`` (``spec_resync``), as the first message
        of a session instead of a full sync; None when the cache cannot tell them (the
        SPU then gets a full sync). Afterwards the SPU holds what a full sync would have
        given it, and this cursor remembers that as sent."""
        resend = self._specs.resend_since(self._cache, cursor)  # no await until they move
        if resend is None:
            return None
        self._spus.take_changes()
        self._partitions.take_changes()
        self._topics.take_changes()
        now = spec_cursor(self._cache)
        self._sent_spus = {spu.key: spu_spec(spu) for spu in self._cache.spus.objects()}
        version = spec_version(self._cache)
        hosted = await self._specs.hosted(self._spu_id, self._cache.partitions, version)
        self._sent_replicas = dict(hosted)
        return Delta.model_construct(  # built from the cache's valid specs: no second check
            epoch=epoch,
            trace=trace or {},
            spus_changed=list(self._sent_spus.values()),
            spus_removed=[],
            replicas_changed=replica_resync(hosted, resend),
            replicas_removed=[],
            fetch_keys=None,
            cursor=now,
            since=cursor,
            replicas_held=list(hosted),
            sc_members=[],
        )

    def has_change(self) -> bool:
        return self._spus.has_change() or self._partitions.has_change() or self._topics.has_change()

    def delta(self, epoch: int, trace: dict[str, str] | None = None) -> Delta:
        """The spec changes since the last message; empty when nothing the SPU holds changed."""
        before = dict(self._sent_spus)
        spus_changed, removed_keys = _diff(self._sent_spus, self._spus.take_changes(), spu_spec)
        still_present = {spec.id for spec in self._sent_spus.values()}
        spus_removed = sorted({before[key].id for key in removed_keys} - still_present)
        replicas_changed, replicas_removed = _diff(
            self._sent_replicas, self._partition_changes(), self._replica_spec
        )
        return Delta(
            cursor=spec_cursor(self._cache),
            epoch=epoch,
            trace=trace or {},
            spus_changed=spus_changed,
            spus_removed=spus_removed,
            replicas_changed=replicas_changed,
            replicas_removed=replicas_removed,
        )

    def _partition_changes(self) -> Changes[Any, Any]:
        """The partitions' spec changes, plus the cached partitions of every topic whose
        spec changed (their replica specs carry its storage settings)."""
        changes = self._partitions.take_changes()
        topics = self._topics.take_changes()
        if changes.is_full_sync or not topics.updates:
            return changes
        extra = _other_partitions_of(
            self._cache.partitions,
            {topic.key for topic in topics.updates},
            {p.key for p in changes.updates},
        )
        if not extra:
            return changes
        return replace(changes, updates=changes.updates + tuple(extra))

    async def wait_for_change(self, timeout: float) -> None:
        """Return once a spec changed, or after ``timeout`` seconds."""
        if self.has_change():
            return
        await until_first(
            {
                "await-spu-specs": self._spus.wait_for_change(),
                "await-replica-specs": self._partitions.wait_for_change(),
                "await-topic-specs": self._topics.wait_for_change(),
            },
            timeout=timeout,
        )


def _other_partitions_of(
    partitions: StoreView[PartitionSpec, Any],
    topics: set[str],
    listed: set[str],
    among: Container[str] | None = None,
) -> list[Partition]:
    """The cached partitions of ``topics`` not in ``listed`` (and in ``among``, if
    given): a topic's partitions carry its storage settings, so a topic spec change
    changes their replica specs. Looks only at those topics' partitions (the store's
    index by topic), not at every cached one."""
    found = []
    for topic in topics:
        for key in partitions.keys_in(topic):
            if key in listed or (among is not None and key not in among):
                continue
            if (partition := partitions.get(key)) is not None:
                found.append(partition)
    return found


def _diff(
    sent: dict[str, T],
    changes: Changes[Any, Any],
    convert: Callable[[StoredObject[Any, Any]], T | None],
) -> tuple[list[T], list[str]]:
    """Bring ``sent`` up to ``changes``; return what is new or different, and removed keys.

    ``convert`` returns None for an object the SPU is not to have (any more).
    """
    converted = {obj.key: convert(obj) for obj in changes.updates}
    current = {key: spec for key, spec in converted.items() if spec is not None}
    dropped = [key for key, spec in converted.items() if spec is None and key in sent]
    if changes.is_full_sync:
        removed = [key for key in sent if key not in current]
    else:
        removed = [key for key in changes.deletes if key in sent] + dropped
    changed = [spec for key, spec in current.items() if sent.get(key) != spec]
    for key in removed:
        del sent[key]
    sent.update(current)
    return changed, removed
