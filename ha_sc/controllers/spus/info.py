"""What placement and election need to know about an SPU."""

from collections.abc import Iterable
from dataclasses import dataclass

from ha_sc.model.kinds import Spu
from ha_sc.model.spu import SpuResolution


@dataclass(frozen=True, slots=True)
class SpuInfo:
    """An SPU's id, rack and whether the SC currently hears from it."""

    id: int
    rack: str | None = None
    online: bool = False

    @classmethod
    def from_spu(cls, spu: Spu) -> "SpuInfo":
        """The info of a cached SPU; online when its status resolution is Online."""
        return cls(
            id=spu.spec.id,
            rack=spu.spec.rack,
            online=spu.status.resolution == SpuResolution.ONLINE,
        )


def spu_infos(spus: Iterable[Spu]) -> list[SpuInfo]:
    """The info of every SPU, ordered by SPU id."""
    return sorted((SpuInfo.from_spu(spu) for spu in spus), key=lambda info: info.id)


def spus_by_id(spus: Iterable[SpuInfo]) -> dict[int, SpuInfo]:
    """SPU id -> info."""
    return {spu.id: spu for spu in spus}
