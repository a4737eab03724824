"""Object metadata and the generic stored object (meta + spec + status)."""

from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

SpecT = TypeVar("SpecT", bound=BaseModel)
StatusT = TypeVar("StatusT", bound=BaseModel)


class OwnerRef(BaseModel):
    """The object that owns another; deleting the owner deletes the owned."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: str
    key: str


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
