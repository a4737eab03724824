"""``spu-state.json``: what the SPU's control plane knows, for operators and tests.

The task ``spu-state-file`` rewrites the file after changes, at most once per
``interval``, and never spends more than one part in ``COST_RATIO`` of the time on
it: an SPU holding 60k replicas writes a document of several MB, so after a write
that took ``w`` seconds the next waits ``COST_RATIO * w`` at least. The replicas, the
bulk of it, are kept encoded (``state_replicas.py``: only changed ones are encoded
again, a slice at a time), and the file is written on a thread, so a write holds the
event loop for milliseconds, not for the whole document. Each write
replaces the file durably (write aside, fsync, rename, fsync the directory), so a
reader never sees half a document and a power loss never loses a recorded epoch.
The SPU reads its highest epoch back on start, so a restarted SPU still refuses a deposed leader.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ha_sc.durable import replace_atomically
from ha_sc.spu.state_replicas import ReplicaLines

log = logging.getLogger("ha_sc.spu")

COST_RATIO = 20
"""The file takes at most 1/COST_RATIO of the SPU's time (5%)."""


def read_state(path: Path) -> dict[str, Any] | None:
    """The document in ``path``; None if there is none or it is unreadable."""
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("cannot read the spu state file %s: %s", path, exc)
        return None
    return doc if isinstance(doc, dict) else None


class StateFile:
    """Writes ``document()`` to ``path`` whenever ``mark_changed`` was called since,
    with the ``replicas`` array of ``replicas`` added when given."""

    def __init__(
        self,
        path: Path,
        document: Callable[[], dict[str, Any]],
        *,
        interval: float,
        replicas: ReplicaLines | None = None,
    ) -> None:
        self.path = path
        self._document = document
        self._replicas = replicas
        self._interval = interval
        self._changed = asyncio.Event()
        self._changed.set()  # the first write comes at once
        self._replacing = threading.Lock()
        """One replacement at a time: a last ``write`` waits for the thread's."""
        self.writes = 0

    def mark_changed(self) -> None:
        self._changed.set()

    async def run(self) -> None:
        """Write after each change, at most once per interval, until cancelled."""
        while True:
            await self._changed.wait()
            self._changed.clear()
            started = time.monotonic()
            try:
                if self._replicas is not None:
                    await self._replicas.refresh_sliced()
                await asyncio.to_thread(self._replace, self._encode())
            except OSError as exc:
                log.warning("cannot write the spu state file %s: %s; will retry", self.path, exc)
                self._changed.set()
            took = time.monotonic() - started
            await asyncio.sleep(max(self._interval, COST_RATIO * took))

    def write(self) -> None:
        """Write the current document now (holding the event loop, if called from it)."""
        if self._replicas is not None:
            self._replicas.refresh()
        self._replace(self._encode())

    def _encode(self) -> bytes:
        doc = {**self._document(), "pid": os.getpid(), "written_at": time.time()}
        data = json.dumps(doc, sort_keys=True).encode()  # one line: C encoder
        if self._replicas is not None:
            data = b"".join([data[:-1], b', "replicas": ', self._replicas.array(), b"}"])
        return data + b"\n"

    def _replace(self, data: bytes) -> None:
        with self._replacing:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            replace_atomically(self.path, data)
            self.writes += 1
