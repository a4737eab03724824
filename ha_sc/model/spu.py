"""SPU (Streaming Processing Unit) spec and status."""

from enum import StrEnum

from pydantic import Field

from ha_sc.model.base import SpecModel, StatusModel
from ha_sc.model.ints import SpuId


class SpuType(StrEnum):
    """Who manages an SPU: an SPU group (managed) or an operator (custom)."""

    MANAGED = "managed"
    CUSTOM = "custom"


class Endpoint(SpecModel):
    """A host and TCP port."""

    host: str = Field(min_length=1)
    port: int = Field(ge=1, le=65535)

    def __str__(self) -> str:
        if ":" in self.host:
            return f"[{self.host}]:{self.port}"
        return f"{self.host}:{self.port}"


class SpuSpec(SpecModel):
    """Desired state of an SPU."""

    id: SpuId
    spu_type: SpuType = SpuType.CUSTOM
    public_endpoint: Endpoint
    """Where producers and consumers reach the SPU."""
    private_endpoint: Endpoint
    """Where other SPUs reach it for replication."""
    rack: str | None = None


class SpuResolution(StrEnum):
    """Whether the SC currently hears from the SPU."""

    INIT = "Init"
    ONLINE = "Online"
    OFFLINE = "Offline"


class SpuStatus(StatusModel):
    """Observed state of an SPU."""

    resolution: SpuResolution = SpuResolution.INIT


class CustomSpuSpec(SpecModel):
    """A request to register a custom SPU."""

    id: SpuId
    public_endpoint: Endpoint
    private_endpoint: Endpoint
    rack: str | None = None

    def to_spu_spec(self) -> SpuSpec:
        """The SPU spec stored for this registration."""
        return SpuSpec(
            id=self.id,
            spu_type=SpuType.CUSTOM,
            public_endpoint=self.public_endpoint,
            private_endpoint=self.private_endpoint,
            rack=self.rack,
        )
