"""The store-agnostic key-value interface every backend implements.

Objects live at ``<kind>/<key>``; a value is the JSON envelope written by
``ha_sc.model.codec`` (``spec``, optional ``status`` and ``owner``). The KV
knows the envelope only as far as ownership goes: deleting an object deletes
every object that names it as owner, recursively.

Revisions are global to the store and never go backwards. Every change gets a
revision; several changes may share one (an etcd transaction). A watch of a
kind from revision R yields every change of that kind with revision >= R, in
revision order, each exactly once.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from election.guard import Guard


class KvError(Exception):
    """Base class of every error the KV layer raises.

    Picklable whatever the subclass's constructor takes: the Raft state machine keeps
    the answers of recent writes, refusals included, in its snapshots.
    """

    def __reduce__(self) -> tuple[object, ...]:
        return (_restore_error, (type(self), self.args, self.__dict__))


def _restore_error(
    cls: type[KvError], args: tuple[object, ...], state: dict[str, object]
) -> KvError:
    error = cls.__new__(cls, *args)
    error.args = args
    error.__dict__.update(state)
    return error


class KeyExists(KvError):
    def __init__(self, kind: str, key: str) -> None:
        super().__init__(f"{kind}/{key} already exists")
        self.kind = kind
        self.key = key


class KeyNotFound(KvError):
    def __init__(self, kind: str, key: str) -> None:
        super().__init__(f"{kind}/{key} not found")
        self.kind = kind
        self.key = key


class RevisionConflict(KvError):
    """An update or delete named a revision that is no longer the object's."""

    def __init__(self, kind: str, key: str, expected: int, actual: int) -> None:
        super().__init__(
            f"{kind}/{key} changed: expected revision {expected}, store has {actual}; "
            "nothing was written"
        )
        self.kind = kind
        self.key = key
        self.expected = expected
        self.actual = actual


class StaleGuard(KvError):
    """A fenced write whose epoch is no longer the current leader's."""

    def __init__(self, guard: Guard) -> None:
        super().__init__(
            f"write refused: election {guard.election!r} epoch {guard.epoch} is no longer current"
        )
        self.guard = guard


class RevisionCompacted(KvError):
    """A watch asked for history the store no longer keeps; re-list instead."""

    def __init__(self, requested: int, compacted: int) -> None:
        super().__init__(
            f"revision {requested} is compacted (oldest kept: {compacted + 1}); re-list the kind"
        )
        self.requested = requested
        self.compacted = compacted


class KvUnavailable(KvError):
    """The store could not be reached or has no leader; the write may be retried."""


class EventType(enum.StrEnum):
    PUT = "put"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class KvEntry:
    """One stored value with its revisions."""

    kind: str
    key: str
    value: bytes
    revision: int
    create_revision: int


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """A change to one key. ``value`` is the new value (empty for a delete);
    ``create_revision`` the object's (in a delete 0 on etcd, whose watch does not say)."""

    type: EventType
    kind: str
    key: str
    value: bytes
    revision: int
    create_revision: int


Events = list[WatchEvent]


@dataclass(frozen=True, slots=True)
class Listing:
    """All entries of a kind, read at one store revision."""

    entries: tuple[KvEntry, ...]
    revision: int


@dataclass(frozen=True, slots=True)
class CreateOp:
    """In a batch: create the key if absent (as ``KvStore.create``)."""

    kind: str
    key: str
    value: bytes


@dataclass(frozen=True, slots=True)
class UpdateOp:
    """In a batch: replace the value if the key is at ``expected_revision`` (as ``update``)."""

    kind: str
    key: str
    value: bytes
    expected_revision: int


@dataclass(frozen=True, slots=True)
class DeleteOp:
    """In a batch: delete the key and what it owns (as ``KvStore.delete``)."""

    kind: str
    key: str
    expected_revision: int | None = None


BatchOp = CreateOp | UpdateOp | DeleteOp
BatchOutcome = int | KvError
"""One op's outcome in a batch: the revision it landed at, or why it was refused
(KeyExists, KeyNotFound, RevisionConflict)."""
BatchOutcomes = list[BatchOutcome]
"""A batch's outcomes, one per op, in order."""


@runtime_checkable
class KvStore(Protocol):
    """The operations every backend provides; all of them are atomic."""

    async def list(self, kind: str) -> Listing:
        """Every entry of ``kind`` at the current revision, and that revision."""
        ...

    async def get(self, kind: str, key: str) -> KvEntry | None: ...

    async def create(self, kind: str, key: str, value: bytes, *, guard: Guard | None = None) -> int:
        """Create the key if absent; returns the new revision. Raises KeyExists."""
        ...

    async def update(
        self,
        kind: str,
        key: str,
        value: bytes,
        *,
        expected_revision: int,
        guard: Guard | None = None,
    ) -> int:
        """Replace the value if the key's revision is ``expected_revision``.

        Raises KeyNotFound or RevisionConflict; nothing is written then.
        """
        ...

    async def delete(
        self,
        kind: str,
        key: str,
        *,
        expected_revision: int | None = None,
        guard: Guard | None = None,
    ) -> int:
        """Delete the key and, recursively, every object it owns; returns the revision."""
        ...

    async def write_batch(
        self, ops: Sequence[BatchOp], *, guard: Guard | None = None
    ) -> BatchOutcomes:
        """Apply ``ops`` in order, each under exactly the condition of its single write;
        one outcome per op, in order.

        An op refused for its own condition (KeyExists, KeyNotFound, RevisionConflict)
        has that error as its outcome and does not stop the others. The guard is checked
        once for the batch: StaleGuard is raised and nothing is written. KvUnavailable
        is raised when the batch's outcome is unknown (some ops may have been applied).
        See docs/kv.md, "Batch writes", for what each backend makes atomic.
        """
        ...

    def watch(self, kind: str, start_revision: int) -> AsyncIterator[WatchEvent]:
        """Changes of ``kind`` with revision >= ``start_revision``, in order, forever.

        Raises RevisionCompacted (when iterated) if that history is gone.
        """
        ...

    async def close(self) -> None: ...
