"""The high watermark checkpoint: ``hw.checkpoint``, a small JSON file replaced atomically.

It is written at most once per ``hw_checkpoint_interval`` and on flush and close, so
after a crash it can lag the high watermark the log had; the log then starts from
``min(checkpointed hw, leo)`` and the leader's next fetch response moves it on.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

from ha_sc.durable import replace_atomically
from ha_sc.spu.storage.layout import CHECKPOINT_NAME

log = logging.getLogger("ha_sc.spu.storage")
VERSION = 1


def read_hw(directory: Path) -> int | None:
    """The checkpointed high watermark; None if there is none or it is unreadable.

    An unreadable or malformed file is logged and read as None: the log then starts
    its high watermark at its log start offset, never above what is known committed,
    and the leader's next fetch response moves it on (the file is rewritten then)."""
    path = directory / CHECKPOINT_NAME
    try:
        doc = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError, RecursionError) as exc:
        log.warning("%s is unreadable, starting with no high watermark: %s", path, exc)
        return None
    hw = doc.get("hw") if isinstance(doc, dict) else None
    valid = isinstance(hw, int) and not isinstance(hw, bool) and hw >= 0
    if not isinstance(doc, dict) or doc.get("version") != VERSION or not valid:
        log.warning("%s does not hold a version %d checkpoint: %r", path, VERSION, doc)
        return None
    return hw


def write_hw(directory: Path, hw: int) -> None:
    data = json.dumps({"version": VERSION, "hw": hw}).encode() + b"\n"
    replace_atomically(directory / CHECKPOINT_NAME, data)


class HwCheckpoint:
    """Writes the high watermark when it changed, at most once per ``interval`` seconds
    unless forced."""

    def __init__(self, directory: Path, *, interval: float, clock: Callable[[], float]) -> None:
        self._directory = directory
        self._interval = interval
        self._clock = clock
        self._written: int | None = read_hw(directory)
        self._written_at = clock()

    @property
    def value(self) -> int | None:
        """The high watermark last written (or read at start)."""
        return self._written

    def offer(self, hw: int, *, force: bool = False) -> bool:
        """Write ``hw`` if it differs from the file and ``force`` or the interval has
        passed; True if it was written."""
        if hw == self._written:
            return False
        now = self._clock()
        if not force and now - self._written_at < self._interval:
            return False
        write_hw(self._directory, hw)
        self._written, self._written_at = hw, now
        return True
