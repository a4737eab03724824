"""The in-memory cache of one kind: objects with spec/status epochs, and tombstones.

The store epoch grows by one for every applied change, or once for a whole
batch (a full sync), and only when something actually changed. Each object
remembers the epoch at which its spec and its status last changed, so a reader
that remembers an epoch can ask what changed since. Deleted keys are kept as
tombstones, up to ``max_tombstones`` of them; when older ones are dropped the
fence moves up, and a reader whose epoch is behind the fence gets a full sync
instead of a difference that might miss deletes.

Only the dispatcher of the kind writes (``sync_all``, ``apply_put``,
``apply_delete``, ``advance_revision``); everyone else reads through
``StoreView``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Generic

from ha_sc.model.kinds import Kind
from ha_sc.model.meta import SpecT, StatusT, StoredObject
from ha_sc.store.changes import ChangeFocus, Changes
from ha_sc.store.errors import CacheCorrupted
from ha_sc.store.listener import ChangeListener
from ha_sc.store.revision_journal import RevisionJournal
from ha_sc.store.view import EpochEntry

DEFAULT_MAX_TOMBSTONES = 10_000

RevisionWanted = Callable[[int], None]
"""Called with a KV revision a reader is waiting for; the dispatcher catches up."""
GroupOf = Callable[[str], str]
"""The group a key belongs to (a partition's topic): the store indexes keys by it."""


@dataclass(frozen=True, slots=True)
class SyncSummary:
    """What a full sync did to the store."""

    added: int
    changed: int
    deleted: int
    unchanged: int

    @property
    def objects(self) -> int:
        """Objects in the store after the sync."""
        return self.added + self.changed + self.unchanged


@dataclass(slots=True)
class _Batch:
    """Changes gathered while applying one change or one full sync."""

    epoch: int
    spec_changed: bool = False
    status_changed: bool = False
    meta_changed: bool = False

    @property
    def changed(self) -> bool:
        return self.spec_changed or self.status_changed or self.meta_changed


class LocalStore(Generic[SpecT, StatusT]):
    """Cached objects of one kind, their epochs, tombstones and the KV revision."""

    def __init__(
        self,
        kind: Kind,
        *,
        max_tombstones: int = DEFAULT_MAX_TOMBSTONES,
        group_of: GroupOf | None = None,
    ) -> None:
        if max_tombstones < 0:
            raise ValueError(f"max_tombstones must be >= 0, not {max_tombstones}")
        self._kind = kind
        self._max_tombstones = max_tombstones
        self._entries: dict[str, EpochEntry[SpecT, StatusT]] = {}
        self._by_epoch: dict[str, None] = {}
        """The keys of ``_entries``, the most recently changed last: ``changes_since``
        walks back from the end, so its cost is the number of changes, not of objects."""
        self._by_spec_epoch: dict[str, None] = {}
        """The same keys, the most recent *spec* change last: spec changes since an epoch
        cost their own number, not that of every status written since (at 100k
        partitions a new leader's resync by cursor walked 100k status changes per SPU)."""
        self._tombstones: dict[str, int] = {}  # key -> epoch of its delete, oldest first
        self._group_of = group_of
        self._groups: dict[str, dict[str, None]] = {}
        """Group -> its cached keys, in the order cached (with ``group_of`` only): a
        reader asking for one topic's partitions looks at those, not at every object."""
        self._epoch = 0
        self._fence = 0  # deletes at epochs <= fence may have been forgotten
        self._last_spec_change = 0
        self._last_status_change = 0
        self._revision = 0
        self._snapshot: Mapping[str, StoredObject[SpecT, StatusT]] | None = None
        self._changed = asyncio.Event()
        self._revision_wanted: RevisionWanted | None = None
        self._journal = RevisionJournal()
        self._settled = 0

    # reads

    @property
    def kind(self) -> Kind:
        return self._kind

    @property
    def epoch(self) -> int:
        return self._epoch

    @property
    def revision(self) -> int:
        return self._revision

    @property
    def settled_revision(self) -> int:
        """The highest KV revision every change of which is in the store: the revision of
        the last listing, or one below the last event's (the events of one transaction
        share a revision and arrive one by one)."""
        return self._settled

    @property
    def fence(self) -> int:
        """Readers at an epoch below this one get a full sync: deletes were forgotten."""
        return self._fence

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def get(self, key: str) -> StoredObject[SpecT, StatusT] | None:
        entry = self._entries.get(key)
        return None if entry is None else entry.obj

    def entry(self, key: str) -> EpochEntry[SpecT, StatusT] | None:
        return self._entries.get(key)

    def snapshot(self) -> Mapping[str, StoredObject[SpecT, StatusT]]:
        if self._snapshot is None:
            self._snapshot = MappingProxyType({k: e.obj for k, e in self._entries.items()})
        return self._snapshot

    def objects(self) -> tuple[StoredObject[SpecT, StatusT], ...]:
        return tuple(self.snapshot().values())

    def keys_in(self, group: str) -> tuple[str, ...]:
        """The cached keys of ``group`` (``group_of``; none if the store has no groups)."""
        keys = self._groups.get(group)
        return tuple(keys) if keys is not None else ()

    def spec_epoch_at(self, revision: int) -> int | None:
        """The epoch to ask ``spec_changes_since`` for the spec changes after KV revision
        ``revision``; None when this store cannot tell (``RevisionJournal``)."""
        if revision > self._revision:
            return None
        return self._journal.spec_epoch_at(revision)

    def spec_written_after(self, revision: int) -> list[str]:
        """Keys whose spec may have been written after KV revision ``revision``
        (``EpochEntry.spec_revision``); looks at every object."""
        return [key for key, e in self._entries.items() if e.spec_revision > revision]

    def tombstones(self) -> Mapping[str, int]:
        """Deleted keys still remembered, with the epoch of their delete."""
        return MappingProxyType(dict(self._tombstones))

    def last_change(self, focus: ChangeFocus = ChangeFocus.ANY) -> int:
        if focus is ChangeFocus.SPEC:
            return self._last_spec_change
        if focus is ChangeFocus.STATUS:
            return self._last_status_change
        return self._epoch

    def changes_since(
        self, epoch: int, *, focus: ChangeFocus = ChangeFocus.ANY
    ) -> Changes[SpecT, StatusT]:
        if epoch < self._fence or epoch > self._epoch:
            return self.full_sync()
        changed: list[StoredObject[SpecT, StatusT]] = []
        spec = focus is ChangeFocus.SPEC
        for key in reversed(self._by_spec_epoch if spec else self._by_epoch):
            entry = self._entries[key]
            if (entry.spec_epoch if spec else entry.epoch) <= epoch:
                break
            if entry.changed_after(epoch, focus):
                changed.append(entry.obj)
        updates = tuple(reversed(changed))
        deletes: list[str] = []
        for key, deleted_at in reversed(self._tombstones.items()):
            if deleted_at <= epoch:
                break
            deletes.append(key)
        deletes.reverse()
        return Changes(self._epoch, updates, tuple(deletes), is_full_sync=False)

    def spec_changes_since(self, epoch: int) -> Changes[SpecT, StatusT]:
        return self.changes_since(epoch, focus=ChangeFocus.SPEC)

    def status_changes_since(self, epoch: int) -> Changes[SpecT, StatusT]:
        return self.changes_since(epoch, focus=ChangeFocus.STATUS)

    def full_sync(self) -> Changes[SpecT, StatusT]:
        return Changes(self._epoch, self.objects(), (), is_full_sync=True)

    def listen(self, *, focus: ChangeFocus = ChangeFocus.ANY) -> ChangeListener[SpecT, StatusT]:
        return ChangeListener(self, focus=focus)

    async def wait_for_change(
        self, after_epoch: int, *, focus: ChangeFocus = ChangeFocus.ANY
    ) -> int:
        while self.last_change(focus) <= after_epoch:
            await self._changed.wait()
        return self._epoch

    def request_revision(self, revision: int) -> None:
        if revision > self._revision and self._revision_wanted is not None:
            self._revision_wanted(revision)

    async def wait_for_revision(self, revision: int, *, relist: bool = True) -> None:
        """Return once the store reflects ``revision``; ``relist`` asks the dispatcher to
        re-list to get there rather than wait for the watch to bring it."""
        if relist:
            self.request_revision(revision)
        while self._revision < revision:
            await self._changed.wait()

    # writes: the dispatcher only

    def on_revision_wanted(self, callback: RevisionWanted | None) -> None:
        """Register the dispatcher's hook for readers waiting on a revision (None: remove)."""
        self._revision_wanted = callback

    def sync_all(
        self, objects: Iterable[StoredObject[SpecT, StatusT]], revision: int
    ) -> SyncSummary:
        """Make the store hold exactly ``objects``, as of KV revision ``revision``.

        Objects equal to the cached ones keep their epochs; spec and status are
        compared separately; keys not in ``objects`` become tombstones.
        """
        incoming: dict[str, StoredObject[SpecT, StatusT]] = {}
        for obj in objects:
            if obj.key in incoming:
                raise CacheCorrupted(f"{self._kind}: full sync lists key {obj.key!r} twice")
            incoming[obj.key] = obj
        return self.sync_listing(incoming.values(), incoming.keys(), revision)

    def sync_listing(
        self,
        changed: Iterable[StoredObject[SpecT, StatusT]],
        listed: Collection[str],
        revision: int,
    ) -> SyncSummary:
        """``sync_all`` from what a listing at ``revision`` showed: the objects new or
        not as cached (``changed``) and every key it holds (``listed``). Keys cached
        but not listed become tombstones; the rest stay as they are, epochs and all.
        """
        self._check_order(revision, "full sync")
        batch = _Batch(self._epoch + 1)
        added = updated = 0
        for obj in changed:
            existed = obj.key in self._entries
            if self._put(obj, batch, listing=True):
                updated += existed
                added += not existed
        vanished = [key for key in self._entries if key not in listed]
        for key in vanished:
            self._remove(key, batch)
        self._commit(batch, revision, listing=True)
        return SyncSummary(added, updated, len(vanished), len(self._entries) - added - updated)

    def apply_put(self, obj: StoredObject[SpecT, StatusT]) -> bool:
        """Store a created or updated object; returns whether anything changed."""
        self._check_order(obj.meta.revision, f"put of {obj.key!r}")
        batch = _Batch(self._epoch + 1)
        self._put(obj, batch)
        self._commit(batch, obj.meta.revision)
        return batch.changed

    def apply_delete(self, key: str, revision: int) -> bool:
        """Forget a deleted object; returns whether it was cached."""
        self._check_order(revision, f"delete of {key!r}")
        batch = _Batch(self._epoch + 1)
        if key in self._entries:
            self._remove(key, batch)
        self._commit(batch, revision)
        return batch.changed

    def advance_revision(self, revision: int) -> None:
        """Record that the store reflects ``revision`` though nothing in it changed."""
        self._check_order(revision, "revision advance")
        self._commit(_Batch(self._epoch + 1), revision)

    # internals

    def _check_order(self, revision: int, what: str) -> None:
        if revision < self._revision:
            raise CacheCorrupted(
                f"{self._kind}: {what} at revision {revision} is older than the cache, "
                f"which reflects revision {self._revision}"
            )

    def _put(
        self, obj: StoredObject[SpecT, StatusT], batch: _Batch, *, listing: bool = False
    ) -> bool:
        epoch = batch.epoch
        old = self._entries.get(obj.key)
        if old is None:
            self._entries[obj.key] = EpochEntry(obj, epoch, epoch, epoch, obj.meta.revision)
            self._by_epoch[obj.key] = None
            self._by_spec_epoch[obj.key] = None
            if self._group_of is not None:
                self._groups.setdefault(self._group_of(obj.key), {})[obj.key] = None
            self._tombstones.pop(obj.key, None)
            batch.spec_changed = batch.status_changed = True
            return True
        if old.obj is obj or old.obj == obj:
            return False
        spec_changed = old.obj.spec != obj.spec
        status_changed = old.obj.status != obj.status
        del self._by_epoch[obj.key]  # re-insert: the most recently changed go last
        self._by_epoch[obj.key] = None
        if spec_changed:
            del self._by_spec_epoch[obj.key]
            self._by_spec_epoch[obj.key] = None
        self._entries[obj.key] = EpochEntry(
            obj,
            spec_epoch=epoch if spec_changed else old.spec_epoch,
            status_epoch=epoch if status_changed else old.status_epoch,
            epoch=epoch,
            # a listing shows where the object is, not what it went through since
            spec_revision=obj.meta.revision if spec_changed or listing else old.spec_revision,
        )
        batch.spec_changed |= spec_changed
        batch.status_changed |= status_changed
        batch.meta_changed = True
        return True

    def _remove(self, key: str, batch: _Batch) -> None:
        del self._entries[key]
        del self._by_epoch[key]
        del self._by_spec_epoch[key]
        if self._group_of is not None:
            group = self._group_of(key)
            keys = self._groups[group]
            del keys[key]
            if not keys:
                del self._groups[group]
        self._tombstones.pop(key, None)  # re-insert so the dict stays ordered by epoch
        self._tombstones[key] = batch.epoch
        batch.spec_changed = batch.status_changed = True
        while len(self._tombstones) > self._max_tombstones:
            oldest = next(iter(self._tombstones))
            self._fence = max(self._fence, self._tombstones.pop(oldest))

    def _commit(self, batch: _Batch, revision: int, *, listing: bool = False) -> None:
        moved = revision > self._revision
        self._revision = max(self._revision, revision)
        self._settled = max(self._settled, revision if listing else revision - 1)
        if batch.changed:
            self._epoch = batch.epoch
            if batch.spec_changed:
                self._last_spec_change = batch.epoch
            if batch.status_changed:
                self._last_status_change = batch.epoch
            self._snapshot = None
        if listing:
            self._journal.listed(revision, self._epoch, moved=batch.changed)
        elif batch.spec_changed:
            self._journal.spec_changed(revision, self._epoch)
        if moved or batch.changed:
            self._changed.set()
            self._changed = asyncio.Event()
