"""Watches fed from a state machine's history."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from election.wakeup import Wakeup
from ha_sc.kv.api import WatchEvent

ChangeSignal = Wakeup
"""Wakes watchers when the state machine applied changes (from any thread)."""

ReadSince = Callable[[str, int], tuple[list[WatchEvent], int]]
"""(kind, start revision) -> (events of kind since then, store revision they were read at)."""


async def watch_history(
    read_since: ReadSince, signal: ChangeSignal, kind: str, start_revision: int
) -> AsyncIterator[WatchEvent]:
    """Yield every change of ``kind`` from ``start_revision`` on, waiting for new ones."""
    next_revision = max(start_revision, 1)
    with signal.subscribe() as changed:
        while True:
            changed.clear()
            events, revision = read_since(kind, next_revision)
            for event in events:
                yield event
            next_revision = max(next_revision, revision + 1)
            await changed.wait()
