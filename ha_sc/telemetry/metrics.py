"""A process's Prometheus registry and the text format it is scraped in.

``prometheus-client`` rather than the OpenTelemetry metrics SDK: it is the reference
Python client, renders the text format itself with no exporter or reader between the
instruments and the scrape, and lets a collector compute cheap values (leadership,
cache sizes, offsets) at scrape time. Each process makes its own registry (never the
module-global default), so several replicas in one test process keep apart.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from prometheus_client import CollectorRegistry, disable_created_metrics, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import Metric

PREFIX = "ha_sc"
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
"""The text format 0.0.4, which every Prometheus server since 2.0 reads."""


class Collector(Protocol):
    """What a registry calls at each scrape."""

    def collect(self) -> Iterable[Metric]: ...


def new_registry() -> CollectorRegistry:
    """An empty registry of one process's metrics.

    Counters and histograms go without their ``_created`` series (a process-wide
    setting of the client; the registries here are the process's only ones)."""
    disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped in the client
    return CollectorRegistry(auto_describe=False)


def exposition(registry: CollectorRegistry) -> bytes:
    """Every metric of ``registry`` in the Prometheus text format."""
    return generate_latest(registry)
