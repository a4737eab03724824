"""Stored SPU objects for controller unit tests: one builder instead of one per module."""

from __future__ import annotations

from ha_sc.model import Endpoint, ObjectMeta, Spu, SpuResolution, SpuSpec, SpuStatus


def stored_spu(
    spu_id: int, resolution: SpuResolution = SpuResolution.ONLINE, rack: str | None = None
) -> Spu:
    """SPU ``spu_id`` as the store holds it, with ``resolution`` as its status."""
    endpoint = Endpoint(host="localhost", port=9005)
    return Spu(
        meta=ObjectMeta(key=f"spu-{spu_id}", revision=1),
        spec=SpuSpec(id=spu_id, public_endpoint=endpoint, private_endpoint=endpoint, rack=rack),
        status=SpuStatus(resolution=resolution),
    )
