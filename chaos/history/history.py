"""A parsed history: the events of one run, and the views every checker needs."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from chaos.history.events import (
    EVENT,
    Bulk,
    Control,
    Event,
    Fault,
    Leader,
    Phase,
    Produce,
    Read,
    Span,
)

FINAL_READER = "final"
"""The reader of the drain phase: it reads every partition from its start."""


@dataclass(frozen=True, slots=True)
class Window:
    """A span of time: a fault from injection to heal, or a phase."""

    name: str
    start: float
    end: float
    target: str = ""

    def __contains__(self, t: float) -> bool:
        return self.start <= t < self.end


class History:
    """The events of one run in the order they were recorded."""

    def __init__(self, events: Iterable[Event]) -> None:
        self.events = list(events)
        self.produces = [e for e in self.events if isinstance(e, Produce)]
        self.reads = [e for e in self.events if isinstance(e, Read)]
        self.leaders = [e for e in self.events if isinstance(e, Leader)]
        self.controls = [e for e in self.events if isinstance(e, Control)]
        self.bulks = [e for e in self.events if isinstance(e, Bulk)]
        self.spans = [e for e in self.events if isinstance(e, Span)]

    @classmethod
    def load(cls, path: Path) -> History:
        """Parse ``history.jsonl``; a torn last line (a run cut short) is left out."""
        events: list[Event] = []
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                events.append(EVENT.validate_python(json.loads(line)))
            except (ValueError, ValidationError) as exc:
                raise ValueError(f"{path}:{number}: not a history event: {exc}") from exc
        return cls(events)

    @property
    def final_reads(self) -> list[Read]:
        return [r for r in self.reads if r.reader == FINAL_READER]

    @property
    def span(self) -> Window:
        """From the first event to the last."""
        times = [_time(e) for e in self.events]
        return Window("run", min(times, default=0.0), max(times, default=0.0))

    def faults(self) -> list[Window]:
        """Each injected fault, until its heal (or the end of the history)."""
        open_: dict[tuple[str, str], float] = {}
        windows: list[Window] = []
        for e in self.events:
            if not isinstance(e, Fault):
                continue
            key = (e.name, e.target)
            if e.action == "inject":
                open_.setdefault(key, e.t)
            elif key in open_:
                windows.append(Window(e.name, open_.pop(key), e.t, e.target))
        end = self.span.end
        windows += [Window(n, start, end, t) for (n, t), start in open_.items()]
        return sorted(windows, key=lambda w: w.start)

    def phases(self) -> dict[str, Window]:
        """Each phase until the next one starts (the last until the end)."""
        marks = [e for e in self.events if isinstance(e, Phase)]
        end = self.span.end
        return {
            mark.name: Window(mark.name, mark.t, marks[i + 1].t if i + 1 < len(marks) else end)
            for i, mark in enumerate(marks)
        }


def _time(event: Event) -> float:
    return event.start if isinstance(event, Produce | Bulk) else event.t
