"""The workload a run uses: producers and consumers when the client library has them."""

from __future__ import annotations

from chaos.runner import WorkloadFactory


def streaming_workload() -> WorkloadFactory | None:
    """None until the data plane's client library is there."""
    return None
