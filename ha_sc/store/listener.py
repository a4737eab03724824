"""A reader's cursor over one store: remembers the epoch it synced to."""

from __future__ import annotations

from typing import Generic, Protocol

from ha_sc.model.meta import SpecT, StatusT
from ha_sc.store.changes import ChangeFocus, Changes


class ChangeSource(Protocol[SpecT, StatusT]):
    """What a listener reads of its store (a ``StoreView`` is one): defined here so the
    view can hand out listeners without the two modules importing each other."""

    @property
    def epoch(self) -> int: ...

    def last_change(self, focus: ChangeFocus = ChangeFocus.ANY) -> int: ...

    def changes_since(
        self, epoch: int, *, focus: ChangeFocus = ChangeFocus.ANY
    ) -> Changes[SpecT, StatusT]: ...

    def full_sync(self) -> Changes[SpecT, StatusT]: ...

    async def wait_for_change(
        self, after_epoch: int, *, focus: ChangeFocus = ChangeFocus.ANY
    ) -> int: ...

    async def wait_for_revision(self, revision: int, *, relist: bool = True) -> None: ...


class ChangeListener(Generic[SpecT, StatusT]):
    """Hands a controller the changes of one store, one batch at a time.

    It starts unsynced, so its first ``take_changes`` is a full sync. With
    ``focus`` SPEC or STATUS it sees only changes of that part (deletes always).
    """

    def __init__(
        self, store: ChangeSource[SpecT, StatusT], *, focus: ChangeFocus = ChangeFocus.ANY
    ) -> None:
        self._store = store
        self._focus = focus
        self._synced_epoch: int | None = None

    @property
    def focus(self) -> ChangeFocus:
        return self._focus

    @property
    def synced_epoch(self) -> int | None:
        """The store epoch of the last changes taken; None before the first."""
        return self._synced_epoch

    def has_change(self) -> bool:
        """Whether ``take_changes`` would return something."""
        if self._synced_epoch is None:
            return True
        return self._store.last_change(self._focus) > self._synced_epoch

    def take_changes(self) -> Changes[SpecT, StatusT]:
        """Changes since the last call (a full sync the first time); moves the cursor."""
        if self._synced_epoch is None:
            changes = self._store.full_sync()
        else:
            changes = self._store.changes_since(self._synced_epoch, focus=self._focus)
        self._synced_epoch = changes.epoch
        return changes

    async def wait_for_change(self, after_epoch: int | None = None) -> int:
        """Return the store epoch once a change after ``after_epoch`` exists.

        ``after_epoch`` defaults to the cursor; an unsynced listener returns at once.
        """
        if after_epoch is None:
            if self._synced_epoch is None:
                return self._store.epoch
            after_epoch = self._synced_epoch
        return await self._store.wait_for_change(after_epoch, focus=self._focus)

    async def wait_for_revision(self, revision: int) -> None:
        """Return once the store reflects KV revision ``revision`` or a later one."""
        await self._store.wait_for_revision(revision)
