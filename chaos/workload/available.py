"""The workload a run uses: producers and consumers through the client library."""

from __future__ import annotations

import functools

from chaos.runner import WorkloadFactory
from chaos.workload.streaming import StreamingWorkload


def streaming_workload(load: float = 0.0) -> WorkloadFactory | None:
    """The streaming workload (a factory: one per run, once the cluster is up); with
    ``load`` records a second of bulk load beside it."""
    return functools.partial(StreamingWorkload, load=load)
