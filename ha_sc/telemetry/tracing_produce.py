"""Produce request spans on an SPU, sampled: a ratio of requests gets one.

The ratio is the SPU's (``spu run --trace-produce-ratio``, 1% by default); it applies
only while tracing is on. A request is traced from its arrival to its answer
(written, and committed when it asked for all in-sync replicas).
"""

from __future__ import annotations

import random

from opentelemetry.trace import Span, Status, StatusCode

from ha_sc.telemetry.tracing_context import tracer

DEFAULT_PRODUCE_RATIO = 0.01
_TRACER = tracer(__name__)


class ProduceSampling:
    """Which produce requests get a span."""

    def __init__(self, ratio: float = DEFAULT_PRODUCE_RATIO) -> None:
        self.ratio = ratio
        self._random = random.Random()

    def configure(self, ratio: float) -> None:
        if not 0.0 <= ratio <= 1.0:
            raise ValueError(f"produce trace ratio {ratio} is not between 0 and 1")
        self.ratio = ratio

    def start(self, partition: str, request_id: int, records_bytes: int) -> Span | None:
        """A span for this request, or None (not sampled, or tracing off)."""
        if self.ratio <= 0.0 or self._random.random() >= self.ratio:
            return None
        span = _TRACER.start_span(
            f"produce {partition}",
            attributes={"key": partition, "request_id": request_id, "bytes": records_bytes},
        )
        if not span.is_recording():
            return None
        return span


def end_produce(span: Span, response: object) -> None:
    """End ``span`` with the answer: an error code is an error status."""
    error = getattr(response, "error", None)
    if error is not None:
        span.set_status(Status(StatusCode.ERROR, f"{error.code}: {error.message}"))
    base_offset = getattr(response, "base_offset", None)
    if isinstance(base_offset, int):
        span.set_attribute("offset", base_offset)
    span.end()


PRODUCE = ProduceSampling()
"""This SPU's sampling of produce requests."""
