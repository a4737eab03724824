"""The workload a run uses: producers and consumers through the client library."""

from __future__ import annotations

from chaos.runner import WorkloadFactory
from chaos.workload.streaming import StreamingWorkload


def streaming_workload() -> WorkloadFactory | None:
    """The streaming workload (a factory: one per run, once the cluster is up)."""
    return StreamingWorkload
