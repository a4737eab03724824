"""Span records as trees, and trees as indented text (what ``ha-sc trace show`` prints).

Pure: records in, text out. A span whose parent is in no file read (another member's
file not given, or a span still in a killed member's queue) is shown as a root.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from ha_sc.telemetry.tracing_file import SpanRecord

SHOWN_ATTRIBUTES = (
    "kind",
    "key",
    "epoch",
    "revision",
    "spu_id",
    "controller",
    "action",
    "replicas",
    "reason",
    "http.response.status_code",
)
"""The attributes a tree line shows, in this order, when a span has them."""


@dataclass
class SpanNode:
    record: SpanRecord
    children: list[SpanNode] = field(default_factory=list)


@dataclass
class Trace:
    trace_id: str
    roots: list[SpanNode]

    @property
    def start_ns(self) -> int:
        return min(root.record.start_ns for root in self.roots)

    @property
    def seconds(self) -> float:
        """From the first span's start to the last one's end."""
        return (self._end_ns(self.roots) - self.start_ns) / 1e9

    def _end_ns(self, nodes: list[SpanNode]) -> int:
        return max(max(n.record.end_ns, self._end_ns(n.children)) for n in nodes) if nodes else 0

    def __len__(self) -> int:
        def count(nodes: list[SpanNode]) -> int:
            return sum(1 + count(n.children) for n in nodes)

        return count(self.roots)


def build_traces(records: Iterable[SpanRecord]) -> list[Trace]:
    """Every trace in ``records``, oldest first; spans ordered by start under a parent.
    A span seen twice (the same file given twice) counts once."""
    by_trace: dict[str, dict[str, SpanNode]] = defaultdict(dict)
    for record in records:
        by_trace[record.trace_id].setdefault(record.span_id, SpanNode(record))
    traces = []
    for trace_id, nodes in by_trace.items():
        roots: list[SpanNode] = []
        for node in nodes.values():
            parent = nodes.get(node.record.parent_span_id or "")
            (parent.children if parent is not None else roots).append(node)
        for node in nodes.values():
            node.children.sort(key=lambda n: n.record.start_ns)
        roots.sort(key=lambda n: n.record.start_ns)
        traces.append(Trace(trace_id, roots))
    traces.sort(key=lambda t: t.start_ns)
    return traces


def select(traces: list[Trace], *, trace_id: str | None, slowest: int | None) -> list[Trace]:
    """The traces to show: one by id (a prefix will do), or the ``slowest`` longest."""
    if trace_id is not None:
        traces = [t for t in traces if t.trace_id.startswith(trace_id.lower())]
    if slowest is not None:
        traces = sorted(traces, key=lambda t: t.seconds, reverse=True)[:slowest]
    return traces


def render(trace: Trace) -> list[str]:
    """``trace`` as lines: a header, then a line per span indented by depth, with its
    duration, its start after the trace's, its member, status and key attributes."""
    lines = [f"trace {trace.trace_id}  {_ms(trace.seconds)}  {len(trace)} spans"]

    def walk(node: SpanNode, depth: int) -> None:
        lines.append("  " * (depth + 1) + _describe(node.record, trace.start_ns))
        for child in node.children:
            walk(child, depth + 1)

    for root in trace.roots:
        walk(root, 0)
    return lines


def _describe(record: SpanRecord, trace_start_ns: int) -> str:
    member = record.resource.get("service.instance.id", record.service)
    shown = " ".join(
        f"{name}={_value(record.attributes[name])}"
        for name in SHOWN_ATTRIBUTES
        if name in record.attributes
    )
    text = (
        f"{record.name}  {_ms(record.seconds)}  "
        f"(+{_ms((record.start_ns - trace_start_ns) / 1e9)}, {member})"
    )
    if shown:
        text += f"  {shown}"
    if record.status == "error":
        text += f"  ERROR: {record.status_message or 'error'}"
    return text


def _value(value: object) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"
