"""The JSON-lines span file: one finished span per line, written by each member.

``SpanFileExporter`` is an OpenTelemetry ``SpanExporter`` (called on the batch
processor's own thread, never on the event loop); ``SpanRecord`` is the line's model,
read back by ``ha-sc trace show``. Ids are lower-case hex as in W3C traceparent.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import StatusCode
from pydantic import BaseModel, ConfigDict, Field, ValidationError

AttributeValue = str | bool | int | float | list[str] | list[bool] | list[int] | list[float]


class SpanEvent(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    time_ns: int
    attributes: dict[str, AttributeValue] = Field(default_factory=dict)


class SpanRecord(BaseModel):
    """One finished span, as a line of the file."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    trace_id: str
    span_id: str
    parent_span_id: str | None = None
    name: str
    service: str
    start_ns: int
    end_ns: int
    status: str = "unset"
    """``ok``, ``error`` or ``unset``."""
    status_message: str | None = None
    attributes: dict[str, AttributeValue] = Field(default_factory=dict)
    events: list[SpanEvent] = Field(default_factory=list)
    resource: dict[str, AttributeValue] = Field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return (self.end_ns - self.start_ns) / 1e9


def span_line(span: ReadableSpan) -> str:
    """``span`` as a line of the file (a ``SpanRecord``, built without validating: this
    runs for every span, on the export thread, which shares the GIL with the loop)."""
    context = span.get_span_context()
    assert context is not None
    resource = span.resource.attributes
    status = span.status
    line: dict[str, object] = {
        "trace_id": f"{context.trace_id:032x}",
        "span_id": f"{context.span_id:016x}",
        "name": span.name,
        "service": str(resource.get("service.name", "")),
        "start_ns": span.start_time or 0,
        "end_ns": span.end_time or span.start_time or 0,
    }
    if span.parent is not None:
        line["parent_span_id"] = f"{span.parent.span_id:016x}"
    if status.status_code is not StatusCode.UNSET:
        line["status"] = "ok" if status.status_code is StatusCode.OK else "error"
        if status.description:
            line["status_message"] = status.description
    if span.attributes:
        line["attributes"] = _plain(span.attributes)
    if span.events:
        line["events"] = [
            {"name": e.name, "time_ns": e.timestamp, "attributes": _plain(e.attributes or {})}
            for e in span.events
        ]
    line["resource"] = _plain(resource)
    return json.dumps(line, separators=(",", ":")) + "\n"


def _plain(attributes: object) -> dict[str, AttributeValue]:
    assert hasattr(attributes, "items")
    result: dict[str, AttributeValue] = {}
    for key, value in attributes.items():
        result[str(key)] = list(value) if isinstance(value, tuple) else value
    return result


class SpanFileExporter(SpanExporter):
    """Appends finished spans to ``path``, one JSON object a line, flushed per batch."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._file: IO[str] | None = path.open("a", encoding="utf-8")

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = "".join(span_line(span) for span in spans)
        with self._lock:
            if self._file is None:
                return SpanExportResult.FAILURE
            self._file.write(lines)
            self._file.flush()
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class BadSpanLine(ValueError):
    """A line of a span file that is not a span record."""


class SpanFiles:
    """Every span of ``paths`` (files, or directories whose ``*.jsonl`` are read).

    A line that is not JSON was torn by a member killed mid-write (a restarted member
    appends after it): it is skipped and counted in ``torn``. A JSON line that is not a
    span record raises BadSpanLine naming the file and line."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self.paths = list(paths)
        self.torn: list[str] = []
        """``file:line`` of each torn line skipped."""

    def __iter__(self) -> Iterator[SpanRecord]:
        for path in self.paths:
            members = sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
            for member in members:
                yield from self._read_one(member)

    def _read_one(self, path: Path) -> Iterator[SpanRecord]:
        with path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    document = json.loads(line)
                except json.JSONDecodeError:
                    self.torn.append(f"{path}:{number}")
                    continue
                try:
                    yield SpanRecord.model_validate(document)
                except ValidationError as exc:
                    raise BadSpanLine(f"{path}:{number}: not a span record: {exc}") from exc


def read_span_files(paths: Sequence[Path]) -> Iterator[SpanRecord]:
    """Every span of ``paths`` (see ``SpanFiles``)."""
    return iter(SpanFiles(paths))
