"""Spans of this test process in memory: one SDK tracer provider for the session (the
OpenTelemetry API takes one per process), sampling only while a test captures.

Outside a capture every span is dropped at its start, as with tracing off, so other
tests in the same session see no spans and no remembered origins."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind
from opentelemetry.util.types import Attributes

from ha_sc.telemetry.tracing_context import ORIGINS


class _Switch(Sampler):
    def __init__(self) -> None:
        self.on = False

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        return SamplingResult(Decision.RECORD_AND_SAMPLE if self.on else Decision.DROP, attributes)

    def get_description(self) -> str:
        return "test switch"


_SWITCH = _Switch()
_EXPORTER = InMemorySpanExporter()
_PROVIDER = TracerProvider(sampler=_SWITCH)
_PROVIDER.add_span_processor(SimpleSpanProcessor(_EXPORTER))


@contextmanager
def captured_spans() -> Iterator[InMemorySpanExporter]:
    """Spans started inside the block are recorded and exported at once to the exporter
    yielded."""
    if trace.get_tracer_provider() is not _PROVIDER:
        trace.set_tracer_provider(_PROVIDER)  # once per process: later calls are refused
    _EXPORTER.clear()
    ORIGINS.clear()
    _SWITCH.on = True
    try:
        yield _EXPORTER
    finally:
        _SWITCH.on = False
        ORIGINS.clear()


def by_name(spans: Sequence[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def ancestor_spans(spans: Sequence[ReadableSpan], span: ReadableSpan) -> list[ReadableSpan]:
    """``span``'s ancestors, nearest first (as far as ``spans`` reach)."""
    by_id = {s.context.span_id: s for s in spans if s.context is not None}
    found = []
    parent = span.parent
    while parent is not None and parent.span_id in by_id:
        found.append(by_id[parent.span_id])
        parent = found[-1].parent
    return found


def ancestors(spans: Sequence[ReadableSpan], span: ReadableSpan) -> list[str]:
    """The names of ``span``'s ancestors, nearest first."""
    return [s.name for s in ancestor_spans(spans, span)]
