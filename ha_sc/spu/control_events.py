"""``control-events.jsonl``: the SPU's audit trail of the epoch fence.

One JSON line per fence decision that matters: every refused message, every full
sync, and an accepted delta whenever its epoch differs from the epoch of the last
accepted message written. Keepalives under a known epoch add nothing, so the file
grows with leadership changes, not with time. Each line::

    {"t": 1717171717.123, "spu": 5001, "epoch": 7, "outcome": "accept",
     "message": "full_sync", "highest": 7}

``t`` is wall-clock seconds (so lines from several processes line up); ``highest``
is the fence's highest epoch after the decision. Each line is appended (open, write,
close: no handle is held), so it reaches the OS before the SPU acts on the message.
A write that fails is logged once and the SPU goes on: the trail is for audits and
chaos runs, the fence does not depend on it.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Literal

log = logging.getLogger("ha_sc.spu")

CONTROL_EVENTS_FILE = "control-events.jsonl"

Outcome = Literal["accept", "refuse"]


class ControlEventLog:
    """Appends the fence decisions of one SPU to ``path``."""

    def __init__(self, path: Path, spu_id: int) -> None:
        self.path = path
        self._spu_id = spu_id
        self._last_accepted: int | None = None
        self._failed = False
        self.written = 0

    def record(self, *, epoch: int, accepted: bool, message: str, highest: int) -> None:
        """Note one fence decision (written if it matters, see the module doc)."""
        if accepted and message != "full_sync" and epoch == self._last_accepted:
            return
        if accepted:
            self._last_accepted = epoch
        outcome: Outcome = "accept" if accepted else "refuse"
        self._write(
            {
                "t": round(time.time(), 6),
                "spu": self._spu_id,
                "epoch": epoch,
                "outcome": outcome,
                "message": message,
                "highest": highest,
            }
        )

    def _write(self, line: dict[str, object]) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as trail:
                trail.write(json.dumps(line) + "\n")
            self.written += 1
        except OSError as exc:
            if not self._failed:
                log.warning("spu %d: cannot append to %s: %s", self._spu_id, self.path, exc)
            self._failed = True
