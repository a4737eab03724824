"""An SC replica's metrics: counters bumped where things happen, the rest read at scrape.

Leadership, epoch, revisions, cache sizes and connected SPUs are read from the replica
at each scrape (``ScSample``, built by a callback), so nothing on the replica's paths
updates them. Controller passes, their latency and errors, leadership changes and
refused fenced writes are counted where they happen, as plain increments.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.metrics_core import Metric

from ha_sc.telemetry.metrics import PREFIX, new_registry

PASS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Controller pass latency buckets (seconds): a pass plans in ms at a few topics and in
about half a second at 100k partitions."""


CONTROLLER = "cluster"
"""The ``controller`` label: one loop plans topics, partitions and SPUs at once."""
ERROR_REASONS = ("store_unavailable", "fenced")
WRITERS = ("controllers", "catch_up", "api")
"""Who made a fenced write: the controller loop, a new leader's catch-up marks, the API."""


@dataclass(frozen=True, slots=True)
class ScSample:
    """What a replica shows at one scrape."""

    replica_id: str
    backend: str
    is_leader: bool
    epoch: int
    """The epoch this replica leads, else the highest it saw lead; 0 before any."""
    store_revision: int
    """The KV revision of the newest change the cache applied (of any kind: a kind
    that did not change since stays at its own older revision)."""
    kv_revision: int | None
    """The KV's own revision where the backend knows it locally (Raft, memory)."""
    objects: Mapping[str, int] = field(default_factory=dict)
    """Cached objects per kind."""
    connected_spus: int = 0
    pushes: Mapping[str, int] = field(default_factory=dict)
    """Control messages sent to SPUs, by kind (full_sync, resync, delta, keepalive)."""


class ControllerMetrics:
    """The instruments the leader's duties update."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.passes = Counter(
            f"{PREFIX}_controller_passes",
            "Reconcile passes run by the leader.",
            ["controller"],
            registry=registry,
        )
        self.pass_seconds = Histogram(
            f"{PREFIX}_controller_pass_seconds",
            "Time from the start of a reconcile pass to its last write.",
            ["controller"],
            buckets=PASS_BUCKETS,
            registry=registry,
        )
        self.errors = Counter(
            f"{PREFIX}_controller_errors",
            "Reconcile passes that ended in an error, by reason.",
            ["controller", "reason"],
            registry=registry,
        )
        self.fenced_writes_refused = Counter(
            f"{PREFIX}_fenced_writes_refused",
            "KV writes refused because a newer epoch holds the lease, by writer.",
            ["writer"],
            registry=registry,
        )
        self.leadership_changes = Counter(
            f"{PREFIX}_leadership_changes",
            "Terms this replica won and lost.",
            ["change"],
            registry=registry,
        )
        # every series from the first scrape on, at 0: rate() and absent() need no guessing
        self.passes.labels(CONTROLLER)
        self.pass_seconds.labels(CONTROLLER)
        for reason in ERROR_REASONS:
            self.errors.labels(CONTROLLER, reason)
        for writer in WRITERS:
            self.fenced_writes_refused.labels(writer)
        for change in ("won", "lost"):
            self.leadership_changes.labels(change)


class ScCollector:
    """Builds the scrape-time gauges from ``sample()``."""

    def __init__(self, sample: Callable[[], ScSample]) -> None:
        self._sample = sample

    def collect(self) -> Iterator[Metric]:
        s = self._sample()
        info = InfoMetricFamily(f"{PREFIX}_replica", "This SC replica.")
        info.add_metric([], {"replica_id": s.replica_id, "backend": s.backend})
        yield info
        yield GaugeMetricFamily(
            f"{PREFIX}_is_leader", "1 while this replica leads, else 0.", value=int(s.is_leader)
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_epoch",
            "The epoch this replica leads, else the highest it saw lead.",
            value=s.epoch,
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_store_revision",
            "The KV revision of the newest change the cache applied.",
            value=s.store_revision,
        )
        if s.kv_revision is not None:
            yield GaugeMetricFamily(
                f"{PREFIX}_kv_revision", "The KV's revision on this replica.", value=s.kv_revision
            )
            yield GaugeMetricFamily(
                f"{PREFIX}_store_lag_revisions",
                "KV revisions the cache has not applied yet.",
                value=max(0, s.kv_revision - s.store_revision),
            )
        objects = GaugeMetricFamily(
            f"{PREFIX}_cache_objects", "Objects in the cache, per kind.", labels=["kind"]
        )
        for kind, count in sorted(s.objects.items()):
            objects.add_metric([kind], count)
        yield objects
        yield GaugeMetricFamily(
            f"{PREFIX}_connected_spus",
            "SPUs with a live control connection to this replica.",
            value=s.connected_spus,
        )
        pushes = CounterMetricFamily(
            f"{PREFIX}_pushes", "Control messages sent to SPUs, by kind.", labels=["kind"]
        )
        for kind, count in sorted(s.pushes.items()):
            pushes.add_metric([kind], count)
        yield pushes


class ScMetrics:
    """One replica's registry: the scrape-time collector and the counted instruments."""

    def __init__(self, sample: Callable[[], ScSample]) -> None:
        self.registry = new_registry()
        self.registry.register(ScCollector(sample))
        self.controllers = ControllerMetrics(self.registry)
