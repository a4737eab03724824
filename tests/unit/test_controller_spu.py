"""SPU status follows the SC's connection to it."""

import pytest

from ha_sc.controllers import SpuInfo, UpdateStatus, reduce_spu_status, spu_infos
from ha_sc.model import Endpoint, Kind, ObjectMeta, Spu, SpuResolution, SpuSpec, SpuStatus

INIT, ONLINE, OFFLINE = SpuResolution.INIT, SpuResolution.ONLINE, SpuResolution.OFFLINE


def spu(spu_id: int, resolution: SpuResolution, rack: str | None = None) -> Spu:
    endpoint = Endpoint(host="localhost", port=9005)
    return Spu(
        meta=ObjectMeta(key=f"spu-{spu_id}", revision=3),
        spec=SpuSpec(id=spu_id, public_endpoint=endpoint, private_endpoint=endpoint, rack=rack),
        status=SpuStatus(resolution=resolution),
    )


@pytest.mark.parametrize(
    ("current", "connected", "written"),
    [
        (INIT, True, ONLINE),
        (INIT, False, None),
        (ONLINE, True, None),
        (ONLINE, False, OFFLINE),
        (OFFLINE, True, ONLINE),
        (OFFLINE, False, None),
    ],
)
def test_resolution_follows_connection(
    current: SpuResolution, connected: bool, written: SpuResolution | None
) -> None:
    actions = reduce_spu_status(spu(5001, current), connected=connected)
    if written is None:
        assert actions == []
    else:
        assert actions == [UpdateStatus(Kind.SPU, "spu-5001", 3, SpuStatus(resolution=written))]


def test_spu_infos_from_cached_spus() -> None:
    cached = [spu(5002, OFFLINE, rack="b"), spu(5001, ONLINE, rack="a"), spu(5003, INIT)]
    assert spu_infos(cached) == [
        SpuInfo(5001, rack="a", online=True),
        SpuInfo(5002, rack="b", online=False),
        SpuInfo(5003, rack=None, online=False),
    ]
