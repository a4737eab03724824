"""SPU group: a set of managed SPUs with consecutive ids."""

from enum import StrEnum
from typing import Self

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from ha_sc.model.base import SpecModel, StatusModel
from ha_sc.model.ints import I32_MAX


class StorageConfig(SpecModel):
    """Storage of each SPU in the group."""

    log_dir: str | None = None
    size: str | None = Field(default=None, pattern=r"^[0-9]+(\.[0-9]+)?([KMGTPE]i?|k)?$")
    """A Kubernetes-style quantity such as "10Gi"."""


class SpuConfig(SpecModel):
    """Settings applied to every SPU of a group."""

    rack: str | None = None
    storage: StorageConfig | None = None


class SpuGroupSpec(SpecModel):
    """Desired state of an SPU group: SPU ids min_id .. min_id + replicas - 1."""

    replicas: int = Field(ge=1)
    min_id: int = Field(default=0, ge=0)
    spu_config: SpuConfig = SpuConfig()

    @model_validator(mode="after")
    def _ids_fit_i32(self) -> Self:
        if self.min_id + self.replicas - 1 > I32_MAX:
            raise PydanticCustomError(
                "spu_id_overflow",
                "min_id + replicas - 1 = {last} exceeds the largest SPU id {max}",
                {"last": self.min_id + self.replicas - 1, "max": I32_MAX},
            )
        return self

    def spu_ids(self) -> range:
        """The SPU ids this group owns."""
        return range(self.min_id, self.min_id + self.replicas)


class SpuGroupResolution(StrEnum):
    """Whether the group's SPU ids could be reserved."""

    INIT = "Init"
    INVALID = "Invalid"
    RESERVED = "Reserved"


class SpuGroupStatus(StatusModel):
    """Observed state of an SPU group."""

    resolution: SpuGroupResolution = SpuGroupResolution.INIT
    reason: str | None = None
