"""Object metadata and the generic stored object (meta + spec + status)."""

from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

SpecT = TypeVar("SpecT", bound=BaseModel)
StatusT = TypeVar("StatusT", bound=BaseModel)


class OwnerRef(BaseModel):
    """The object that owns another; deleting the owner deletes the owned.

    ``create_revision`` is the owner's identity: the KV revision at which the owner
    was created. An owner deleted and created again under the same key gets a new
    one, so what the first owned is told apart from what the second owns (an
    orphan, collected, never adopted). ``None`` in references written before
    owners had an identity (see ``controllers.orphans`` for how those are judged).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str
    key: str
    create_revision: int | None = Field(default=None, ge=1)

    def names(self, kind: str, key: str) -> bool:
        """Whether this reference names ``kind/key`` (whichever object holds that key)."""
        return self.kind == kind and self.key == key


class ObjectMeta(BaseModel):
    """Where an object lives in the KV and at which revision it was read."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str
    revision: int = Field(default=0, ge=0)
    """KV mod revision of the value this object was decoded from."""
    create_revision: int = Field(default=0, ge=0)
    """KV revision at which the key was created."""
    owner: OwnerRef | None = None


class StoredObject(BaseModel, Generic[SpecT, StatusT]):
    """One cluster object as held in the cache."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    meta: ObjectMeta
    spec: SpecT
    status: StatusT

    @property
    def key(self) -> str:
        """The object's key within its kind."""
        return self.meta.key
