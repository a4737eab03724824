"""Write intents: what a reducer asks the KV to change.

Reducers return these and never write themselves. The loop that runs a reducer
sends each action to the KV as one write fenced by the leader's epoch; a
``revision`` is the ``meta.revision`` of the cached object the reducer read, and
the write is conditional on the stored object still being at that revision.

A reducer emits at most one action per object per pass: a second write at the
same expected revision would always conflict with the first. A conflict is not
an error to retry blindly: the watch brings the newer object into the cache and
the next pass decides again from it.
"""

from dataclasses import dataclass
from typing import TypeAlias

from ha_sc.model.base import SpecModel, StatusModel
from ha_sc.model.kinds import Kind
from ha_sc.model.meta import OwnerRef


@dataclass(frozen=True, slots=True)
class CreateObject:
    """Create ``kind/key`` if it does not exist yet; an existing object is left alone."""

    kind: Kind
    key: str
    spec: SpecModel
    status: StatusModel | None = None
    """``None`` stores no status: readers then see the kind's default status."""
    owner: OwnerRef | None = None
    """Deleting the owner deletes this object."""


@dataclass(frozen=True, slots=True)
class UpdateSpec:
    """Replace the spec of ``kind/key``, keeping its status and owner."""

    kind: Kind
    key: str
    revision: int
    spec: SpecModel


@dataclass(frozen=True, slots=True)
class UpdateStatus:
    """Replace the status of ``kind/key``, keeping its spec and owner."""

    kind: Kind
    key: str
    revision: int
    status: StatusModel


@dataclass(frozen=True, slots=True)
class DeleteObject:
    """Delete ``kind/key`` and everything it owns; ``revision=None`` deletes any revision."""

    kind: Kind
    key: str
    revision: int | None = None
    reason: str | None = None
    """Why, in the domain's words, for the log (``orphaned: owner topic orders gone``)."""


Action: TypeAlias = CreateObject | UpdateSpec | UpdateStatus | DeleteObject
"""Any write intent."""
