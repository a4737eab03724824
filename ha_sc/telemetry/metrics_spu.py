"""An SPU's metrics, all read at scrape time from what the SPU counts anyway.

The data plane bumps plain integers (``DataTraffic``) on the produce and fetch paths;
the control state counts the pushes it applied and refused; offsets, ISR and lag come
from the hosted replicas. ``SpuSample`` is one reading of all of it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.metrics_core import Metric

from ha_sc.telemetry.metrics import PREFIX, new_registry

SPU = f"{PREFIX}_spu"


@dataclass(slots=True)
class DataTraffic:
    """Produce and fetch totals, bumped on the data plane's request paths."""

    produce_requests: int = 0
    produce_bytes: int = 0
    fetch_requests: int = 0
    fetch_bytes: int = 0


@dataclass(frozen=True, slots=True)
class PartitionSample:
    """One hosted replica at one scrape."""

    partition: str
    leads: bool
    leo: int
    hw: int
    isr_size: int | None = None
    """Replicas in sync, the leader included; only on the leader."""
    follower_lag: Mapping[int, int] = field(default_factory=dict)
    """On the leader: records each follower is behind the leader's LEO (known ones)."""


@dataclass(frozen=True, slots=True)
class SpuSample:
    spu_id: int
    highest_epoch: int
    sc_connected: bool
    pushes_applied: int
    pushes_refused: int
    traffic: DataTraffic
    partitions: tuple[PartitionSample, ...] = ()


def _counter(name: str, doc: str, value: int) -> CounterMetricFamily:
    return CounterMetricFamily(f"{SPU}_{name}", doc, value=value)


class SpuCollector:
    def __init__(self, sample: Callable[[], SpuSample]) -> None:
        self._sample = sample

    def collect(self) -> Iterator[Metric]:
        s = self._sample()
        info = InfoMetricFamily(SPU, "This SPU.")
        info.add_metric([], {"spu_id": str(s.spu_id)})
        yield info
        yield GaugeMetricFamily(
            f"{SPU}_highest_epoch", "The highest SC epoch admitted.", value=s.highest_epoch
        )
        yield GaugeMetricFamily(
            f"{SPU}_sc_connected", "1 while following an SC leader.", value=int(s.sc_connected)
        )
        yield _counter("pushes", "Control messages from the SC leader applied.", s.pushes_applied)
        yield _counter(
            "stale_pushes_refused",
            "Control messages refused for an epoch older than the highest seen.",
            s.pushes_refused,
        )
        t = s.traffic
        yield _counter("produce_requests", "Produce requests received.", t.produce_requests)
        yield _counter(
            "produce_bytes", "Record bytes received in produce requests.", t.produce_bytes
        )
        yield _counter("fetch_requests", "Consumer fetch requests answered.", t.fetch_requests)
        yield _counter("fetch_bytes", "Record bytes sent in fetch answers.", t.fetch_bytes)
        yield from _partitions(s.partitions)


def _partitions(partitions: tuple[PartitionSample, ...]) -> Iterator[Metric]:
    label = ["partition"]
    leads = GaugeMetricFamily(f"{SPU}_partition_leader", "1 where this SPU leads.", labels=label)
    leo = GaugeMetricFamily(f"{SPU}_partition_log_end_offset", "Log end offset.", labels=label)
    hw = GaugeMetricFamily(f"{SPU}_partition_high_watermark", "High watermark.", labels=label)
    isr = GaugeMetricFamily(
        f"{SPU}_partition_isr_size", "In-sync replicas, the leader included.", labels=label
    )
    lag = GaugeMetricFamily(
        f"{SPU}_replication_lag_records",
        "Records a follower is behind the leader's log end (on the leader).",
        labels=["partition", "follower"],
    )
    for p in sorted(partitions, key=lambda p: p.partition):
        leads.add_metric([p.partition], int(p.leads))
        leo.add_metric([p.partition], p.leo)
        hw.add_metric([p.partition], p.hw)
        if p.isr_size is not None:
            isr.add_metric([p.partition], p.isr_size)
        for follower, behind in sorted(p.follower_lag.items()):
            lag.add_metric([p.partition, str(follower)], behind)
    yield from (leads, leo, hw, isr, lag)


def spu_registry(sample: Callable[[], SpuSample]) -> CollectorRegistry:
    registry = new_registry()
    registry.register(SpuCollector(sample))
    return registry
