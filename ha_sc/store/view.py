"""The read side of a per-kind store: what everyone but its dispatcher may use."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Generic, Protocol

from ha_sc.model.kinds import Kind
from ha_sc.model.meta import SpecT, StatusT, StoredObject
from ha_sc.store.changes import ChangeFocus, Changes
from ha_sc.store.listener import ChangeListener


@dataclass(frozen=True, slots=True)
class EpochEntry(Generic[SpecT, StatusT]):
    """One cached object and the store epochs at which its parts last changed."""

    obj: StoredObject[SpecT, StatusT]
    spec_epoch: int
    status_epoch: int
    epoch: int
    """Last change of anything: spec, status or metadata (a new KV revision)."""
    spec_revision: int = 0
    """The KV revision of the spec's last change, or a revision after it: an object's
    revision when a listing brought it (a listing shows where it is, not what it went
    through), or when a watch event changed its spec."""

    def changed_after(self, epoch: int, focus: ChangeFocus) -> bool:
        """Whether the part ``focus`` names changed after store epoch ``epoch``."""
        if focus is ChangeFocus.SPEC:
            return self.spec_epoch > epoch
        if focus is ChangeFocus.STATUS:
            return self.status_epoch > epoch
        return self.epoch > epoch


class StoreView(Protocol[SpecT, StatusT]):
    """Read-only access to the cached objects of one kind.

    Everything returned is immutable: frozen objects, tuples and read-only
    mappings taken at one epoch; later changes never show through them.
    """

    @property
    def kind(self) -> Kind: ...

    @property
    def epoch(self) -> int:
        """Store epoch: grows by one with every applied change or batch that changed something."""
        ...

    @property
    def revision(self) -> int:
        """The KV revision the store reflects (0 before the first sync)."""
        ...

    @property
    def settled_revision(self) -> int:
        """The highest KV revision every change of which is in the store."""
        ...

    def __len__(self) -> int: ...

    def __contains__(self, key: object) -> bool: ...

    def get(self, key: str) -> StoredObject[SpecT, StatusT] | None: ...

    def entry(self, key: str) -> EpochEntry[SpecT, StatusT] | None: ...

    def snapshot(self) -> Mapping[str, StoredObject[SpecT, StatusT]]:
        """Every object by key, as of now; a read-only mapping that never changes."""
        ...

    def objects(self) -> tuple[StoredObject[SpecT, StatusT], ...]: ...

    def last_change(self, focus: ChangeFocus = ChangeFocus.ANY) -> int:
        """The store epoch at which the part ``focus`` names last changed (deletes count)."""
        ...

    def changes_since(
        self, epoch: int, *, focus: ChangeFocus = ChangeFocus.ANY
    ) -> Changes[SpecT, StatusT]:
        """Objects changed and keys deleted after ``epoch``, or a full sync if it is too old."""
        ...

    def spec_changes_since(self, epoch: int) -> Changes[SpecT, StatusT]: ...

    def keys_in(self, group: str) -> tuple[str, ...]:
        """The cached keys of ``group`` (partitions: a topic's), without looking at
        other objects; none for a kind not grouped."""
        ...

    def spec_written_after(self, revision: int) -> list[str]:
        """Keys whose spec may have been written after KV revision ``revision``
        (``EpochEntry.spec_revision``); looks at every object."""
        ...

    def spec_epoch_at(self, revision: int) -> int | None:
        """The epoch whose ``spec_changes_since`` holds every spec change after KV
        revision ``revision``; None when the store cannot tell (``RevisionJournal``)."""
        ...

    def status_changes_since(self, epoch: int) -> Changes[SpecT, StatusT]: ...

    def full_sync(self) -> Changes[SpecT, StatusT]: ...

    def listen(self, *, focus: ChangeFocus = ChangeFocus.ANY) -> ChangeListener[SpecT, StatusT]:
        """A cursor that starts unsynced: its first ``take_changes`` is a full sync."""
        ...

    async def wait_for_change(
        self, after_epoch: int, *, focus: ChangeFocus = ChangeFocus.ANY
    ) -> int:
        """Return the store epoch once the part ``focus`` names changed after ``after_epoch``."""
        ...

    def request_revision(self, revision: int) -> None:
        """Ask the dispatcher to catch up to KV revision ``revision`` soon, without waiting."""
        ...

    async def wait_for_revision(self, revision: int, *, relist: bool = True) -> None:
        """Return once the store reflects KV revision ``revision`` or a later one.

        A watch says nothing while other kinds change, so the store may lag the
        KV revision with nothing to catch up on; waiting therefore asks the
        dispatcher to re-list (once per call) unless ``relist`` is False (for a
        revision known to come through this kind's watch, such as a progress
        mark). Ask only for a revision the KV has reached, and bound the wait
        with a timeout.
        """
        ...
