"""What a reader gets when it asks a store what changed since an epoch."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Generic

from ha_sc.model.meta import SpecT, StatusT, StoredObject


class ChangeFocus(enum.StrEnum):
    """Which part of an object a reader cares about."""

    ANY = "any"
    """Spec, status or metadata (for instance a new KV revision)."""
    SPEC = "spec"
    STATUS = "status"


@dataclass(frozen=True, slots=True)
class Changes(Generic[SpecT, StatusT]):
    """The difference between a reader's epoch and the store's current one.

    When ``is_full_sync`` is true the reader's epoch was too old to compute a
    difference (deletes may have been forgotten): ``updates`` then holds every
    object in the store, ``deletes`` is empty, and the reader replaces its whole
    view with ``updates``.
    """

    epoch: int
    """The store epoch these changes bring the reader to."""
    updates: tuple[StoredObject[SpecT, StatusT], ...]
    deletes: tuple[str, ...]
    is_full_sync: bool

    @property
    def is_empty(self) -> bool:
        """Nothing to do: no update, no delete, no full sync."""
        return not (self.is_full_sync or self.updates or self.deletes)
