"""Carrying a trace across the hops that are not calls: a message, a KV round trip.

``carrier``/``from_carrier`` put the current span into a control message's ``trace``
field as W3C ``traceparent`` and take it out on the other side. ``Origins`` remembers,
per ``kind/key``, the span that last changed the object in this process (the fenced
write, the watch event applied to the cache, the SPU's status report), so what the
change causes next (the cache update, a reconcile, a push to an SPU) joins the same
trace. It keeps only span contexts that are sampled: with tracing off it stays empty.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanContext, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_PROPAGATOR = TraceContextTextMapPropagator()
ORIGINS_KEPT = 100_000
"""The most objects whose last change is remembered (the oldest go first)."""
TRACE_GROWS_FOR = 30.0
"""Seconds after its first remembered span during which a trace takes in what follows
from it; later changes start traces of their own (else a partition's create trace
would go on taking in every status write of its life)."""


def tracer(name: str) -> Tracer:
    """The tracer of module ``name`` (the no-op tracer while tracing is off)."""
    return trace.get_tracer(name)


def carrier(span: Span | None = None) -> dict[str, str]:
    """``span`` (the current one by default) as W3C trace context headers; empty when
    it is not sampled, so an untraced message carries nothing."""
    span = trace.get_current_span() if span is None else span
    if not span.get_span_context().trace_flags.sampled:
        return {}
    headers: dict[str, str] = {}
    _PROPAGATOR.inject(headers, context=trace.set_span_in_context(span))
    return headers


def from_carrier(headers: dict[str, str]) -> Context | None:
    """The remote parent in ``headers`` (None if they hold no valid traceparent)."""
    if not headers:
        return None
    context = _PROPAGATOR.extract(headers)
    if not trace.get_current_span(context).get_span_context().is_valid:
        return None
    return context


def as_parent(span_context: SpanContext | None) -> Context | None:
    """A context whose current span is ``span_context`` (to start a child of it)."""
    if span_context is None:
        return None
    return trace.set_span_in_context(trace.NonRecordingSpan(span_context))


class Origins:
    """Per ``kind/key``: the span context that last changed the object (thread-safe:
    the controller plans on a worker thread)."""

    def __init__(self, kept: int = ORIGINS_KEPT, grows_for: float = TRACE_GROWS_FOR) -> None:
        self._kept = kept
        self._grows_for = grows_for
        self._lock = threading.Lock()
        self._last: OrderedDict[str, SpanContext] = OrderedDict()
        self._born: OrderedDict[int, float] = OrderedDict()
        """Trace id -> when its first span was remembered (monotonic)."""

    def remember(self, kind: str, key: str, span: Span | SpanContext) -> None:
        context = span if isinstance(span, SpanContext) else span.get_span_context()
        if not context.trace_flags.sampled:
            return
        name = f"{kind}/{key}"
        with self._lock:
            self._last[name] = context
            self._last.move_to_end(name)
            while len(self._last) > self._kept:
                self._last.popitem(last=False)
            if context.trace_id not in self._born:
                self._born[context.trace_id] = time.monotonic()
                while len(self._born) > self._kept:
                    self._born.popitem(last=False)

    def restore(self, kind: str, key: str, span: Span, earlier: SpanContext | None) -> None:
        """Undo ``remember(kind, key, span)`` (its write was refused): ``earlier`` again."""
        name = f"{kind}/{key}"
        with self._lock:
            if self._last.get(name) != span.get_span_context():
                return  # something newer came since
            if earlier is None:
                del self._last[name]
            else:
                self._last[name] = earlier

    def clear(self) -> None:
        with self._lock:
            self._last.clear()
            self._born.clear()

    def last(self, kind: str, key: str) -> SpanContext | None:
        if not self._last:  # tracing off: no lock taken
            return None
        with self._lock:
            context = self._last.get(f"{kind}/{key}")
            if context is None:
                return None
            born = self._born.get(context.trace_id)
        if born is None or time.monotonic() - born > self._grows_for:
            return None
        return context

    def __len__(self) -> int:
        return len(self._last)


ORIGINS = Origins()
"""This process's origins (one process is one SC replica or one SPU)."""
