"""Appends history events to ``history.jsonl`` as they happen, one line each."""

from __future__ import annotations

import time
from pathlib import Path
from typing import IO, Literal

from chaos.history.events import Event, Fault, Phase


class Recorder:
    """The one writer of a run's history file; flushed after every event."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file: IO[str] | None = path.open("a", encoding="utf-8")
        self.count = 0

    def record(self, event: Event) -> None:
        if self._file is None:
            return  # closed: a task still winding down after the run
        self._file.write(event.model_dump_json(exclude_none=True) + "\n")
        self._file.flush()
        self.count += 1

    def phase(self, name: str) -> None:
        self.record(Phase(t=time.time(), name=name))

    def fault(self, name: str, target: str, action: Literal["inject", "heal"]) -> None:
        self.record(Fault(t=time.time(), name=name, target=target, action=action))

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
