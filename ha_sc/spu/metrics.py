"""What an SPU shows on ``/metrics``: one ``SpuSample`` read at each scrape."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from ha_sc.spu.control_state import ControlState
from ha_sc.spu.dataplane.plane import DataPlane
from ha_sc.spu.dataplane.registry import Hosted
from ha_sc.telemetry.metrics_spu import PartitionSample, SpuSample, spu_registry


def partition_sample(hosted: Hosted) -> PartitionSample:
    replica = hosted.replica
    leadership = hosted.leadership
    if leadership is None:
        return PartitionSample(hosted.spec.partition, leads=False, leo=replica.leo, hw=replica.hw)
    lag = {
        follower: max(0, replica.leo - progress.leo)
        for follower, progress in leadership.progress.items()
        if progress.leo is not None
    }
    return PartitionSample(
        hosted.spec.partition,
        leads=True,
        leo=replica.leo,
        hw=replica.hw,
        isr_size=1 + len(leadership.isr),
        follower_lag=lag,
    )


def spu_sample(state: ControlState, dataplane: DataPlane) -> SpuSample:
    return SpuSample(
        spu_id=state.spu_id,
        highest_epoch=state.highest_epoch,
        sc_connected=state.sc_address is not None,
        pushes_applied=state.applied,
        pushes_refused=state.refused,
        traffic=dataplane.traffic,
        partitions=tuple(partition_sample(h) for h in dataplane.registry if h.loaded),
    )


def spu_metrics(state: ControlState, dataplane: DataPlane) -> CollectorRegistry:
    """The SPU's registry; each scrape reads the control state and the data plane."""
    return spu_registry(lambda: spu_sample(state, dataplane))
