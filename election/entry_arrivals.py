"""When a Raft node received the log entries it holds and has not applied yet.

A lease renewal is sent by its holder before any node can receive it, so the time a
node received the entry (on its own monotonic clock) is a time the holder had already
sent it by. A node that applies the entry later (a new Raft leader applies the entries
of the previous term only once its own first entry commits, up to a Raft election
after it received them) can count the holder's silence from that earlier time, and
still never before the holder's own deadline (see election/raft_lease.py).

Pure bookkeeping, no clock: the node says when; applies come in index order, so spans
of entries below the one applied are forgotten as it goes.
"""

from __future__ import annotations

from collections import deque


class EntryArrivals:
    """Spans of log indexes and the time each span arrived, oldest first."""

    def __init__(self) -> None:
        self._spans: deque[tuple[int, int, float]] = deque()

    def __len__(self) -> int:
        return len(self._spans)

    def received(self, first: int, last: int, at: float) -> None:
        """Entries ``first``..``last`` arrived at ``at``; they replace any held from
        ``first`` on (a conflicting suffix the leader overwrote)."""
        spans = self._spans
        while spans and spans[-1][0] >= first:
            spans.pop()
        if spans and spans[-1][1] >= first:
            start, _, when = spans.pop()
            spans.append((start, first - 1, when))
        spans.append((first, last, at))

    def arrived(self, index: int) -> float | None:
        """When entry ``index`` arrived, or None if this node did not note it (loaded
        from its journal, or from a snapshot); forgets the spans below it."""
        self.forget_through(index - 1)
        spans = self._spans
        if spans and spans[0][0] <= index:
            return spans[0][2]
        return None

    def forget_through(self, index: int) -> None:
        """Forget every entry up to ``index`` (applied)."""
        spans = self._spans
        while spans and spans[0][1] <= index:
            spans.popleft()
